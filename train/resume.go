package train

import (
	"encoding/json"
	"fmt"
	"reflect"

	"gochat/checkpoint"
)

// loadResume reads the run's last checkpoint and checks that it belongs to this run.
func (r Run) loadResume(plan Plan) (*checkpoint.Checkpoint, error) {
	c, err := checkpoint.LoadLast(r.Dir, true)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	m := c.Meta
	if m.Tokenizer.Fingerprint != r.Tokenizer.Fingerprint() {
		return nil, fmt.Errorf("resume: the run was trained with tokenizer %s (%s), this one is %s (%s)",
			m.Tokenizer.Fingerprint, m.Tokenizer.Dir, r.Tokenizer.Fingerprint(), r.TokenizerDir)
	}
	if m.ModelConfig != plan.Model {
		return nil, fmt.Errorf("resume: the checkpoint's model is %+v, these settings make %+v", m.ModelConfig, plan.Model)
	}
	var saved Settings
	raw, _ := json.Marshal(m.UserConfig)
	if err := json.Unmarshal(raw, &saved); err != nil {
		return nil, fmt.Errorf("resume: user_config: %w", err)
	}
	if saved.ranks() != r.Settings.ranks() {
		return nil, fmt.Errorf("resume: the run ran on %d processes, this is %d: resume it on %d (each keeps its own place in the data)",
			saved.ranks(), r.Settings.ranks(), saved.ranks())
	}
	if diff := trainingDifference(saved, r.Settings); diff != "" {
		return nil, fmt.Errorf("resume: the run was started with %s", diff)
	}
	return c, nil
}

// trainingDifference names the first setting that would change the training itself (not
// its evaluation or bookkeeping) between two settings, or returns "".
func trainingDifference(saved, now Settings) string {
	for _, s := range []*Settings{&saved, &now} {
		s.EvalEvery, s.Evals, s.EvalTokens, s.SampleEvery, s.SaveEvery = 0, 0, 0, 0, 0
		s.MetricsEvery, s.EvalExamples = 0, 0
		s.Recompute = "" // the same gradients either way
	}
	a, b := reflect.ValueOf(saved), reflect.ValueOf(now)
	for i := range a.NumField() {
		if !a.Field(i).Equal(b.Field(i)) {
			name := reflect.TypeOf(saved).Field(i).Tag.Get("json")
			return fmt.Sprintf("%s = %v, not %v", name, a.Field(i), b.Field(i))
		}
	}
	return ""
}
