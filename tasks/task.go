// Package tasks is nanochat's tasks/: datasets of conversations behind one small interface,
// views of a task (nanochat's start/stop/step slicing), mixtures shuffled as nanochat
// shuffles them and sequences, and each dataset's conversion from its published rows to a
// conversation with what its evaluation needs.
package tasks

import (
	"fmt"

	"gochat/internal/nprandom"
	"gochat/internal/pyrandom"
	"gochat/tokenizer"
)

// Kind is how a task's answers are judged: by generating a reply (GSM8K) or by choosing
// among letters (MMLU, ARC).
type Kind int

const (
	Generative  Kind = iota // judged on the reply the model generates (eval.Generative)
	Categorical             // judged on the letter the model chooses (eval.Categorical)
)

// Example is one conversation of a task, with what its evaluation needs: the letters of a
// multiple-choice question and, for MMLU, its subject; for HumanEval, its row, whose tests
// judge a reply.
type Example struct {
	tokenizer.Conversation
	Letters   []string
	Subject   string
	HumanEval *HumanEvalRow
}

// Task is a dataset of conversations.
type Task interface {
	Len() int
	Example(i int) (Example, error)
}

// Rows is a task over dataset rows: Convert makes each row's example.
type Rows[R any] struct {
	Rows    []R
	Convert func(R) (Example, error)
}

// Len implements Task: the number of rows.
func (r Rows[R]) Len() int { return len(r.Rows) }

// Example implements Task: row i converted.
func (r Rows[R]) Example(i int) (Example, error) {
	if i < 0 || i >= len(r.Rows) {
		return Example{}, fmt.Errorf("tasks: example %d of %d", i, len(r.Rows))
	}
	return r.Convert(r.Rows[i])
}

// View is nanochat's slicing of a task: its examples Start, Start+Step, … below Stop (the
// task's end when Stop is negative, nanochat's None).
type View struct {
	Task              Task
	Start, Stop, Step int
}

// NewView checks the slice as nanochat's Task does: start ≥ 0, stop ≥ start (or negative),
// step ≥ 1.
func NewView(t Task, start, stop, step int) (View, error) {
	if start < 0 || step < 1 || (stop >= 0 && stop < start) {
		return View{}, fmt.Errorf("tasks: the view [%d:%d:%d] of %d examples", start, stop, step, t.Len())
	}
	return View{Task: t, Start: start, Stop: stop, Step: step}, nil
}

func (v View) end() int {
	if v.Stop < 0 {
		return v.Task.Len()
	}
	return min(v.Stop, v.Task.Len())
}

// Len implements Task: the number of examples in the view.
func (v View) Len() int { return max(0, (v.end()-v.Start+v.Step-1)/v.Step) }

// Example implements Task: the task's example Start + i·Step.
func (v View) Example(i int) (Example, error) {
	if i < 0 || i >= v.Len() {
		return Example{}, fmt.Errorf("tasks: example %d of a view of %d", i, v.Len())
	}
	return v.Task.Example(v.Start + i*v.Step)
}

// Mixture is nanochat's TaskMixture: every example of its tasks, in an order shuffled with
// CPython's random.Random(42), so that the tasks mix throughout training whatever their
// sizes. A task given twice is sampled twice as often.
type Mixture struct {
	tasks []Task
	order [][2]int // (task, example) at each position
}

// NewMixture mixes tasks.
func NewMixture(tasks ...Task) *Mixture {
	m := &Mixture{tasks: tasks}
	for t, task := range tasks {
		for i := range task.Len() {
			m.order = append(m.order, [2]int{t, i})
		}
	}
	pyrandom.New(42).Shuffle(len(m.order), func(i, j int) { m.order[i], m.order[j] = m.order[j], m.order[i] })
	return m
}

// Len implements Task: the number of examples of all the tasks.
func (m *Mixture) Len() int { return len(m.order) }

// Example implements Task: the example at position i of the shuffled order.
func (m *Mixture) Example(i int) (Example, error) {
	if i < 0 || i >= len(m.order) {
		return Example{}, fmt.Errorf("tasks: example %d of a mixture of %d", i, len(m.order))
	}
	at := m.order[i]
	return m.tasks[at[0]].Example(at[1])
}

// Sequence is nanochat's TaskSequence: its tasks' examples one task after another.
type Sequence []Task

// Len implements Task: the number of examples of all the tasks.
func (s Sequence) Len() int {
	n := 0
	for _, t := range s {
		n += t.Len()
	}
	return n
}

// Example implements Task: example i of the tasks laid end to end.
func (s Sequence) Example(i int) (Example, error) {
	if i >= 0 {
		for _, t := range s {
			if i < t.Len() {
				return t.Example(i)
			}
			i -= t.Len()
		}
	}
	return Example{}, fmt.Errorf("tasks: example out of a sequence of %d", s.Len())
}

// Shuffled is HuggingFace datasets' shuffle(seed): example i is the task's example
// numpy.random.default_rng(seed).permutation(len)[i]. nanochat loads every dataset shuffled
// with seed 42 before its task slices it.
type Shuffled struct {
	Task  Task
	order []int
}

// Shuffle returns t shuffled as dataset.shuffle(seed=seed) shuffles it.
func Shuffle(t Task, seed uint64) Shuffled {
	return Shuffled{Task: t, order: nprandom.DefaultRNG(seed).Permutation(t.Len())}
}

// Len implements Task: the number of examples of the task.
func (s Shuffled) Len() int { return len(s.order) }

// Example implements Task: the task's example at position i of the permutation.
func (s Shuffled) Example(i int) (Example, error) {
	if i < 0 || i >= len(s.order) {
		return Example{}, fmt.Errorf("tasks: example %d of %d", i, len(s.order))
	}
	return s.Task.Example(s.order[i])
}
