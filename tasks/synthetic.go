package tasks

import (
	"fmt"
	"math/rand/v2"
)

// arithmeticTemplates are the word problems Arithmetic asks, each with the expression of
// its answer: %[1]d and %[2]d are the two numbers.
var arithmeticTemplates = []struct {
	question, op string
}{
	{"What is %[1]d + %[2]d?", "+"},
	{"What is %[1]d - %[2]d?", "-"},
	{"What is %[1]d * %[2]d?", "*"},
	{"Sam has %[1]d marbles and finds %[2]d more. How many marbles does Sam have now?", "+"},
	{"A shop had %[1]d apples and sold %[2]d of them. How many apples are left?", "-"},
	{"There are %[1]d boxes with %[2]d pens in each box. How many pens are there in all?", "*"},
	{"A train travels %[1]d km in the morning and %[2]d km in the afternoon. How far does it travel that day?", "+"},
}

// Arithmetic is n arithmetic word problems, drawn with seed, whose answers are written as
// GSM8K writes its solutions: the product through the calculator (a <<expr=result>> span,
// which GSM8K turns into a calculator call and its output) and the final "#### n" line
// that CorrectGSM8K judges. It is data every machine can make, for the demo and the tests:
// the same conversations, tool use and reward as GSM8K, at a scale a small model learns.
func Arithmetic(n int, seed uint64) Task {
	rng := rand.New(rand.NewPCG(seed, 0x61726974686d))
	rows := make([]GSM8KRow, n)
	for i := range rows {
		t := arithmeticTemplates[rng.IntN(len(arithmeticTemplates))]
		a, b := 2+rng.IntN(98), 2+rng.IntN(98)
		if t.op == "*" {
			b = 2 + rng.IntN(9)
		}
		if t.op == "-" && b > a {
			a, b = b, a
		}
		var r int
		switch t.op {
		case "+":
			r = a + b
		case "-":
			r = a - b
		default:
			r = a * b
		}
		rows[i] = GSM8KRow{Question: fmt.Sprintf(t.question, a, b),
			Answer: fmt.Sprintf("%d %s %d = <<%d%s%d=%d>>%d.\n#### %d", a, t.op, b, a, t.op, b, r, r, r)}
	}
	return Rows[GSM8KRow]{Rows: rows, Convert: GSM8K}
}
