package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTiktokenRoundTrip(t *testing.T) {
	tok := testTokenizer(t)
	path := filepath.Join(t.TempDir(), "tokenizer.tiktoken")
	if err := tok.WriteTiktoken(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(raw), "AA== 0\n") || !strings.Contains(string(raw), "IHRoZQ== 259\n") {
		t.Fatalf("not tiktoken's format: %q…", raw[:40])
	}
	back, err := ReadTiktoken(path)
	if err != nil {
		t.Fatal(err)
	}
	text := "there the aaaaa \xff"
	if !slices.Equal(back.Encode(text), tok.Encode(text)) || back.VocabSize() != tok.VocabSize() {
		t.Fatal("the reloaded tokenizer encodes differently")
	}
}

func TestReadTiktokenRejectsDamage(t *testing.T) {
	tok := testTokenizer(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	tok.WriteTiktoken(good)
	raw, _ := os.ReadFile(good)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	for name, text := range map[string]string{
		"bad base64":     strings.Replace(string(raw), "AA== 0", "A!== 0", 1),
		"repeated rank":  strings.Replace(string(raw), "AQ== 1", "AQ== 0", 1),
		"missing field":  strings.Replace(string(raw), "AA== 0", "AA==", 1),
		"rank too large": strings.Join(append(lines[:len(lines)-1], "YWFhYQ== 999"), "\n"),
		"too few tokens": strings.Join(lines[:100], "\n"),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		if _, err := ReadTiktoken(p); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

// TestStreamDecoderKeepsCharactersWhole feeds text one byte token at a time: every piece
// it emits is valid UTF-8 and the pieces rebuild the text; an invalid byte still comes out.
func TestStreamDecoderKeepsCharactersWhole(t *testing.T) {
	tok := testTokenizer(t)
	for _, text := range []string{"héllo 東京 🙂!", "a\xffb", "end in 東"[:len("end in 東")-1]} {
		d := tok.NewStreamDecoder()
		var out strings.Builder
		for i := 0; i < len(text); i++ {
			piece, err := d.Push(int(text[i]))
			if err != nil {
				t.Fatal(err)
			}
			if utf8.ValidString(text) && !utf8.ValidString(piece) {
				t.Fatalf("%q: emitted %q, not valid UTF-8", text, piece)
			}
			out.WriteString(piece)
		}
		out.WriteString(d.Flush())
		if out.String() != text {
			t.Fatalf("stream gave %q, want %q", out.String(), text)
		}
	}
	if _, err := tok.NewStreamDecoder().Push(-5); err == nil {
		t.Fatal("id -5 decoded")
	}
}

func TestFolderRoundTrip(t *testing.T) {
	tok := testTokenizer(t)
	dir := filepath.Join(t.TempDir(), "tok")
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.TokenBytes(), tok.TokenBytes()) || !slices.Equal(back.Encode("the other"), tok.Encode("the other")) {
		t.Fatal("the reloaded tokenizer differs")
	}
	os.WriteFile(filepath.Join(dir, SpecialsFile), []byte(`{"<|bos|>": 3}`), 0o644)
	if _, err := Load(dir); err == nil {
		t.Fatal("wrong special tokens accepted")
	}
}

// FuzzReadTiktoken: any file gives a tokenizer that round-trips its bytes, or an error,
// never a panic.
func FuzzReadTiktoken(f *testing.F) {
	f.Add([]byte("YQ== 0\nYg== 1\n"))
	f.Add([]byte("YQ== 1\n"))
	f.Add([]byte("!!! 0\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.tiktoken")
		os.WriteFile(p, data, 0o644)
		tok, err := ReadTiktoken(p)
		if err != nil {
			return
		}
		text := "abc é"
		if got, err := tok.Decode(tok.Encode(text)); err == nil && string(got) != text {
			t.Fatalf("a tokenizer read from %q turns %q into %q", data, text, got)
		}
	})
}
