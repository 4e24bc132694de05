package train

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

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
	if diff := firstDifference(m.ModelConfig, plan.Model); diff != "" {
		return nil, fmt.Errorf("resume: the checkpoint's model has %s as these settings make it", diff)
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
		s.Recompute = ""                          // the same gradients either way
		s.NumIterations = max(s.NumIterations, 0) // -1 and 0 both leave the horizon to the others (a mid run saved 0 before it had the flag)
	}
	return firstDifference(saved, now)
}

// firstDifference names the first field, by its JSON name, in which two values of one
// struct type differ ("name = a, not b"), or returns "".
func firstDifference(a, b any) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !va.Field(i).Equal(vb.Field(i)) {
			name, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("json"), ",")
			return fmt.Sprintf("%s = %v, not %v", name, va.Field(i), vb.Field(i))
		}
	}
	return ""
}
