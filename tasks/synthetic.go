package tasks

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// problemTemplate is a word problem: its question, in which %[1]d, %[2]d and %[3]d are its
// numbers, and the operator of each step of its solution: the first combines the first two
// numbers, the second the result and the third.
type problemTemplate struct {
	question string
	ops      string
}

// oneStep and twoStep are the word problems Arithmetic and TwoStepArithmetic ask.
var (
	oneStep = []problemTemplate{
		{"What is %[1]d + %[2]d?", "+"},
		{"What is %[1]d - %[2]d?", "-"},
		{"What is %[1]d * %[2]d?", "*"},
		{"Sam has %[1]d marbles and finds %[2]d more. How many marbles does Sam have now?", "+"},
		{"A shop had %[1]d apples and sold %[2]d of them. How many apples are left?", "-"},
		{"There are %[1]d boxes with %[2]d pens in each box. How many pens are there in all?", "*"},
		{"A train travels %[1]d km in the morning and %[2]d km in the afternoon. How far does it travel that day?", "+"},
	}
	twoStep = []problemTemplate{
		{"Sam has %[1]d marbles and finds %[2]d more, then gives %[3]d away. How many marbles does Sam have now?", "+-"},
		{"A shop had %[1]d apples, sold %[2]d of them and then got %[3]d more. How many apples does it have?", "-+"},
		{"There are %[1]d boxes with %[2]d pens in each box and %[3]d loose pens. How many pens are there in all?", "*+"},
		{"What is %[1]d + %[2]d + %[3]d?", "++"},
		{"What is %[1]d * %[2]d - %[3]d?", "*-"},
	}
)

// Arithmetic is n one-step arithmetic word problems, drawn with seed, whose answers are
// written as GSM8K writes its solutions: each product through the calculator (a
// <<expr=result>> span, which GSM8K turns into a calculator call and its output) and the
// final "#### n" line that CorrectGSM8K judges. It is data every machine can make, for the
// demo and the tests: the same conversations, tool use and reward as GSM8K, at a scale a
// small model learns.
func Arithmetic(n int, seed uint64) Task { return problems(oneStep, n, seed) }

// TwoStepArithmetic is n problems as Arithmetic's, each solved in two calculator calls.
func TwoStepArithmetic(n int, seed uint64) Task { return problems(twoStep, n, seed) }

// problems draws n problems from templates.
func problems(templates []problemTemplate, n int, seed uint64) Task {
	rng := rand.New(rand.NewPCG(seed, 0x61726974686d))
	rows := make([]GSM8KRow, n)
	for i := range rows {
		t := templates[rng.IntN(len(templates))]
		nums := [3]int{2 + rng.IntN(98), 2 + rng.IntN(98), 2 + rng.IntN(98)}
		var solution []string
		r := nums[0]
		for k, op := range []byte(t.ops) {
			b := nums[k+1]
			switch op {
			case '*':
				b = 2 + b%9
				nums[k+1] = b
			case '-':
				if b > r {
					b = 1 + b%r
					nums[k+1] = b
				}
			}
			was := r
			switch op {
			case '+':
				r += b
			case '-':
				r -= b
			default:
				r *= b
			}
			solution = append(solution, fmt.Sprintf("%d %c %d = <<%d%c%d=%d>>%d.", was, op, b, was, op, b, r, r))
		}
		rows[i] = GSM8KRow{Question: fmt.Sprintf(t.question, nums[0], nums[1], nums[2]),
			Answer: fmt.Sprintf("%s\n#### %d", strings.Join(solution, " "), r)}
	}
	return Rows[GSM8KRow]{Rows: rows, Convert: GSM8K}
}
