package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gochat/loader"
	"gochat/tokenizer"
)

// lossCurveFile holds the first 50 losses of the fixed run below.
const lossCurveFile = "testdata/loss_curve.json"

// lossCurveTol is the relative difference allowed per step. Runs on other processors and
// BLAS libraries add up float32 products in other orders: over these 50 steps gonum's BLAS
// and OpenBLAS differ by 2.3e-7 at most (development VM). A change to the model, the
// optimizer, the data or the tokenizer moves the losses by far more.
const lossCurveTol = 1e-4

// synthText is a fixed corpus made here (not read from the machine, whose files differ
// between Go versions): documents of sentences of words drawn from a small vocabulary by
// a xorshift generator, frequent words first.
func synthText(docs int) []string {
	words := strings.Fields("the a of to and in is it that for on was with as by at from this be are " +
		"model token train loss step data shard batch layer head gradient weight learning rate value " +
		"go func return error string byte slice map chan select defer package import type struct")
	x := uint64(88172645463325252)
	next := func(n int) int {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return int(x % uint64(n))
	}
	out := make([]string, docs)
	for d := range out {
		var b strings.Builder
		for s := 0; s < 3+next(8); s++ {
			for w := 0; w < 4+next(10); w++ {
				i := min(next(len(words)), next(len(words))) // smaller indices more often
				if w > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(words[i])
			}
			b.WriteString(". ")
		}
		fmt.Fprintf(&b, "(%d)", next(1000))
		out[d] = b.String()
	}
	return out
}

// TestLossCurve runs a fixed tiny training (seed, data and tokenizer made here) and
// compares its first 50 losses with the committed ones. When a change moves them on
// purpose, regenerate the file and say why in the commit:
//
//	GOCHAT_UPDATE_LOSS_CURVE=1 go test ./train -run TestLossCurve
func TestLossCurve(t *testing.T) {
	docs := synthText(1200)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	for i, part := range [][]string{docs[:1100], docs[1100:]} {
		if err := loader.WriteShard(filepath.Join(data, loader.ShardName(i)), part); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := tokenizer.Train(docs[:1100], tokenizer.TrainOptions{VocabSize: 320, DocCap: 10000, MaxChars: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	run := tinyRun(t, data, tok, filepath.Join(dir, "run"))
	run.Settings.Depth, run.Settings.MaxSeqLen, run.Settings.DeviceBatchSize, run.Settings.TotalBatchSize = 2, 64, 4, 512
	run.Settings.NumIterations, run.Settings.EvalEvery, run.Settings.EvalTokens = 50, 0, 256
	if _, err := Base(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, r := range trainRecords(t, run.Dir) {
		got = append(got, r.Loss)
	}
	if os.Getenv("GOCHAT_UPDATE_LOSS_CURVE") != "" {
		raw, _ := json.MarshalIndent(got, "", " ")
		if err := os.WriteFile(lossCurveFile, append(raw, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: loss %.4f → %.4f", lossCurveFile, got[0], got[len(got)-1])
		return
	}
	raw, err := os.ReadFile(lossCurveFile)
	if err != nil {
		t.Fatal(err)
	}
	var want []float64
	if err := json.Unmarshal(raw, &want); err != nil || len(want) != 50 || len(got) != 50 {
		t.Fatalf("%s holds %d losses, the run gave %d (%v)", lossCurveFile, len(want), len(got), err)
	}
	worst := 0.0
	for i := range want {
		rel := math.Abs(got[i]-want[i]) / math.Abs(want[i])
		worst = max(worst, rel)
		if rel > lossCurveTol {
			t.Fatalf("step %d: loss %.6f, the committed curve has %.6f (relative %.2g > %.0g); if the change is meant, regenerate (see the test's comment)",
				i, got[i], want[i], rel, lossCurveTol)
		}
	}
	t.Logf("losses %.4f → %.4f, within %.2g of the committed curve (tolerance %.0g)", got[0], got[49], worst, lossCurveTol)
}
