package tasks

import "os"

// Load is a split of a dataset of the catalog as nanochat's task classes see it: Open's
// rows shuffled as each class shuffles its dataset, with HuggingFace datasets'
// shuffle(seed=42).
func Load(root, name, split string) (Task, error) {
	t, err := Open(root, name, split)
	if err != nil {
		return nil, err
	}
	if name == "identity" { // CustomJSON keeps the file's order
		return t, nil
	}
	return Shuffle(t, 42), nil
}

// part is a slice of a split, nanochat's Task(start, stop) arguments (stop −1: its end).
type part struct {
	name, split string
	stop        int
}

// mixture loads the parts and mixes them (tasks.Mixture), adding the identity
// conversations times times when they have been downloaded; identity says whether they
// were.
func mixture(root string, parts []part, times int) (mix Task, identity bool, err error) {
	var ts []Task
	for _, p := range parts {
		t, err := Load(root, p.name, p.split)
		if err != nil {
			return nil, false, err
		}
		if p.stop >= 0 {
			if t, err = NewView(t, 0, p.stop, 1); err != nil {
				return nil, false, err
			}
		}
		ts = append(ts, t)
	}
	if d, err := Lookup("identity"); err == nil && times > 0 {
		if _, err := os.Stat(d.File(root)); err == nil {
			id, err := Load(root, "identity", "train")
			if err != nil {
				return nil, false, err
			}
			for range times {
				ts = append(ts, id)
			}
			identity = true
		}
	}
	return NewMixture(ts...), identity, nil
}

// MidMixtures are mid_train's conversations under root: SmolTalk's train split, MMLU's
// auxiliary_train and GSM8K's train split to train on (with the identity conversations
// twice, as nanochat added them on 2025-10-21, when they are there), SmolTalk's test split,
// MMLU's first 5,200 test questions and GSM8K's first 420 to validate on.
func MidMixtures(root string) (train, val Task, identity bool, err error) {
	if train, identity, err = mixture(root, []part{{"smoltalk", "train", -1}, {"mmlu", "auxiliary_train", -1}, {"gsm8k", "train", -1}}, 2); err != nil {
		return nil, nil, false, err
	}
	val, _, err = mixture(root, []part{{"smoltalk", "test", -1}, {"mmlu", "test", 5200}, {"gsm8k", "test", 420}}, 0)
	return train, val, identity, err
}

// SFTMixtures are chat_sft's conversations under root: ARC-Easy's and ARC-Challenge's
// train splits, GSM8K's and SmolTalk's first 10,000 train conversations to train on (with
// the identity conversations once, when they are there), SmolTalk's test split to validate
// on.
func SFTMixtures(root string) (train, val Task, identity bool, err error) {
	if train, identity, err = mixture(root, []part{{"arc-easy", "train", -1}, {"arc-challenge", "train", -1}, {"gsm8k", "train", -1}, {"smoltalk", "train", 10_000}}, 1); err != nil {
		return nil, nil, false, err
	}
	val, err = Load(root, "smoltalk", "test")
	return train, val, identity, err
}
