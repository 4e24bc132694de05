package tasks

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"gochat/tokenizer"
)

// ReadCustomJSON is nanochat's CustomJSON task: a JSONL file of conversations, each line a
// JSON array of at least two messages alternating user and assistant, starting with the
// user, all plain text (nanochat's identity conversations are one). Blank lines are skipped;
// any other line that breaks the rules is an error naming it.
func ReadCustomJSON(path string) (Task, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("custom conversations: %w", err)
	}
	defer f.Close()
	var convs []tokenizer.Conversation
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var msgs []tokenizer.Message
		if err := json.Unmarshal([]byte(text), &msgs); err != nil {
			return nil, fmt.Errorf("%s:%d: want a JSON array of messages: %w", path, line, err)
		}
		if len(msgs) < 2 {
			return nil, fmt.Errorf("%s:%d: %d messages; a conversation needs 2 at least", path, line, len(msgs))
		}
		for i, m := range msgs {
			if want := [2]string{"user", "assistant"}[i%2]; m.Role != want || m.Parts != nil {
				return nil, fmt.Errorf("%s:%d: message %d is a %q with %d parts; want %q text", path, line, i, m.Role, len(m.Parts), want)
			}
		}
		convs = append(convs, tokenizer.Conversation{Messages: msgs})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Rows[tokenizer.Conversation]{Rows: convs, Convert: func(c tokenizer.Conversation) (Example, error) {
		return Example{Conversation: c}, nil
	}}, nil
}
