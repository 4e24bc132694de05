package tasks

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMixtures: nanochat's mid-training and SFT mixtures of the downloaded splits, each
// split shuffled as nanochat's task classes shuffle it, cut where nanochat cuts it, with
// the identity conversations (twice for mid-training, once for SFT) only when they are
// there.
func TestMixtures(t *testing.T) {
	root := t.TempDir()
	for _, f := range []struct {
		dataset, split string
		n              int
	}{{"smoltalk", "train", 30}, {"smoltalk", "test", 10}, {"mmlu/auxiliary_train", "auxiliary_train", 20}, {"mmlu", "test", 15},
		{"gsm8k", "train", 12}, {"gsm8k", "test", 8}, {"arc-easy", "train", 5}, {"arc-challenge", "train", 4}} {
		name := strings.Split(f.dataset, "/")[0]
		writeHF(t, filepath.Join(root, name, f.split, "0000.parquet"), f.dataset, 0, f.n)
	}
	check := func(what string, task Task, n int) {
		t.Helper()
		if task.Len() != n {
			t.Errorf("%s: %d conversations, want %d", what, task.Len(), n)
		}
	}
	train, val, identity, err := MidMixtures(root)
	if err != nil {
		t.Fatal(err)
	}
	check("mid train", train, 30+20+12)
	check("mid val", val, 10+15+8)
	if identity {
		t.Error("identity conversations reported without their file")
	}
	d, _ := Lookup("identity")
	writeIdentity(t, d.File(root), 3)
	if train, _, identity, err = MidMixtures(root); err != nil || !identity {
		t.Fatalf("with the identity conversations: %v, %v", identity, err)
	}
	check("mid train with identity", train, 30+20+12+2*3)
	if train, val, identity, err = SFTMixtures(root); err != nil || !identity {
		t.Fatalf("sft: %v, %v", identity, err)
	}
	check("sft train", train, 5+4+12+30+3)
	check("sft val", val, 10)

	loaded, err := Load(root, "gsm8k", "train")
	if err != nil {
		t.Fatal(err)
	}
	opened, _ := Open(root, "gsm8k", "train")
	want := Shuffle(opened, 42)
	moved := 0
	for i := range want.Len() {
		a, _ := loaded.Example(i)
		b, _ := want.Example(i)
		o, _ := opened.Example(i)
		if a.Messages[0].Text != b.Messages[0].Text {
			t.Fatalf("example %d is not the seed-42 shuffle's", i)
		}
		if a.Messages[0].Text != o.Messages[0].Text {
			moved++
		}
	}
	if moved == 0 {
		t.Error("Load did not shuffle")
	}
	if _, _, _, err := SFTMixtures(t.TempDir()); err == nil || !strings.Contains(err.Error(), "gochat data download --task arc-easy") {
		t.Errorf("nothing downloaded: %v", err)
	}
}
