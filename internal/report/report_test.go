package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCard: sections logged in any order come out in the pipeline's order, each with its
// table, plots (copied beside the card under the section's name) and text; the summary
// table puts each stage's metrics in its column and a dash where nothing was measured;
// Reset starts over.
func TestCard(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "report")
	plot := filepath.Join(t.TempDir(), "loss.png")
	os.WriteFile(plot, []byte("png bytes"), 0o644)
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	for _, s := range []Section{
		{Name: "chat-eval-sft", Title: "Chat evaluation: sft", Stage: "sft", Metrics: map[string]float64{"ARC-Easy": 0.31, "ChatCORE": 0.05}, Time: at.Add(3 * time.Hour)},
		{Name: "base-eval", Title: "CORE", Stage: "base", Metrics: map[string]float64{"CORE": 0.2219}, Rows: [][2]string{{"hellaswag", "0.2800"}}, Time: at.Add(time.Hour)},
		{Name: "chat-eval-mid", Title: "Chat evaluation: mid", Stage: "mid", Metrics: map[string]float64{"ARC-Easy": 0.29}, Time: at.Add(2 * time.Hour)},
		{Name: "custom", Title: "Something else", Text: "free text", Time: at},
	} {
		if err := Log(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := Log(dir, Section{Name: "base-training", Title: "Base training", Rows: [][2]string{{"steps", "100"}}, Text: "samples", Time: at}, plot, filepath.Join(dir, "absent.png")); err != nil {
		t.Fatal(err)
	}
	path, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	card := string(raw)
	order := []string{"## Base training", "| steps | 100 |", "![base-training-loss](base-training-loss.png)", "samples",
		"## CORE", "| hellaswag | 0.2800 |", "## Chat evaluation: mid", "## Chat evaluation: sft", "## Something else", "free text", "## Summary"}
	at0 := 0
	for _, want := range order {
		i := strings.Index(card[at0:], want)
		if i < 0 {
			t.Fatalf("the card lacks %q after position %d:\n%s", want, at0, card)
		}
		at0 += i
	}
	for _, row := range []string{"| CORE | 0.2219 | - | - | - |", "| ARC-Easy | - | 0.2900 | 0.3100 | - |", "| ChatCORE | - | - | 0.0500 | - |", "| HumanEval | - | - | - | - |"} {
		if !strings.Contains(card, row) {
			t.Errorf("the summary lacks %q:\n%s", row, card)
		}
	}
	if copied, err := os.ReadFile(filepath.Join(dir, "base-training-loss.png")); err != nil || string(copied) != "png bytes" {
		t.Errorf("the plot beside the card: %q, %v", copied, err)
	}
	if err := Reset(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(dir); err == nil || !strings.Contains(err.Error(), "no sections") {
		t.Errorf("a reset card: %v", err)
	}
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{"), 0o644)
	if _, err := Generate(dir); err == nil || !strings.Contains(err.Error(), "broken.json") {
		t.Errorf("a damaged section: %v", err)
	}
}
