package eval

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCoreOrderAndFewShotMatchNanochat: for every task of the golden bundle, whole and cut
// to 25 items, the items nanochat evaluated, in its order, and the few-shot examples each
// was shown (testdata/golden/core/nanochat_core.json, from nanochat's own code).
func TestCoreOrderAndFewShotMatchNanochat(t *testing.T) {
	raw, err := os.ReadFile("../testdata/golden/core/nanochat_core.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]struct {
		Tasks map[string]struct {
			Items []struct {
				Line         int   `json:"line"`
				FewshotLines []int `json:"fewshot_lines"`
			} `json:"items"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	fewshot := map[string]int{"go_keyword": 3, "go_last_word": 4}
	for run, maxPerTask := range map[string]int{"all": 0, "max_per_task_25": 25} {
		tasks := golden[run].Tasks
		if len(tasks) != 5 {
			t.Fatalf("%s: %d tasks in the golden file", run, len(tasks))
		}
		for name, task := range tasks {
			data, err := os.ReadFile(filepath.Join("../testdata/golden/core/bundle/eval_data/go", name+".jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			n := bytes.Count(bytes.TrimSpace(data), []byte("\n")) + 1
			order := CoreOrder(n, maxPerTask)
			var lines []int
			for _, it := range task.Items {
				lines = append(lines, it.Line)
			}
			if !slices.Equal(order, lines) {
				t.Fatalf("%s %s: order %v, nanochat's %v", run, name, order, lines)
			}
			for idx, it := range task.Items {
				if it.FewshotLines == nil {
					continue
				}
				var got []int
				for _, p := range FewShot(len(order), idx, fewshot[name]) {
					got = append(got, order[p])
				}
				if !slices.Equal(got, it.FewshotLines) {
					t.Errorf("%s %s item %d: few-shot lines %v, nanochat's %v", run, name, idx, got, it.FewshotLines)
				}
			}
		}
	}
}
