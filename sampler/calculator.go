package sampler

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The calculator the model calls between <|python_start|> and <|python_end|>. nanochat
// hands the text to Python's eval after checking its characters; gochat parses it as
// arithmetic and nothing else:
//
//	expr   = term { ("+" | "-") term }
//	term   = unary { ("*" | "/") unary }
//	unary  = { "+" | "-" } atom
//	atom   = number | "(" expr ")"
//	number = digits [ "." [digits] ] | "." digits     (no leading zeros, as in Python 3)
//
// Commas are removed first (a model writes "1,000"); any other character, "**", and
// juxtaposition such as "2(3)" are refused. Arithmetic is exact, on arbitrary-precision
// rationals, within maxCalcLen characters and maxCalcDepth nested parentheses.
//
// Results are printed as GSM8K's training data writes them: an integral result as an
// integer ("10", where Python would print "10.0" after a division), any other as the
// shortest decimal that reads back as the same float64 ("0.5", "2.3333333333333335"); an
// exact rational also prints 0.1+0.2 as "0.3", where Python's floats give
// 0.30000000000000004.

// maxCalcLen and maxCalcDepth bound an expression: with + − × ÷ only, a result has at most
// about as many digits as the expression, so these bound time and memory too.
const (
	maxCalcLen   = 1000
	maxCalcDepth = 100
)

// Calculate evaluates expr and returns its printed value, or false when it is not an
// expression the calculator accepts (including a division by zero).
func Calculate(expr string) (string, bool) {
	expr = strings.ReplaceAll(expr, ",", "")
	if len(expr) > maxCalcLen || strings.Contains(expr, "**") {
		return "", false
	}
	p := &calc{s: expr}
	v, err := p.expr(0)
	if err == nil {
		p.space()
		if p.i < len(p.s) {
			err = fmt.Errorf("unexpected %q", p.s[p.i])
		}
	}
	if err != nil {
		return "", false
	}
	if v.IsInt() {
		return v.Num().String(), true
	}
	f, _ := v.Float64()
	if math.IsInf(f, 0) { // as Python's OverflowError
		return "", false
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

type calc struct {
	s string
	i int
}

func (p *calc) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// peek returns the next character that is not a space, or 0 at the end.
func (p *calc) peek() byte {
	p.space()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *calc) expr(depth int) (*big.Rat, error) {
	v, err := p.term(depth)
	for err == nil {
		op := p.peek()
		if op != '+' && op != '-' {
			return v, nil
		}
		p.i++
		var w *big.Rat
		if w, err = p.term(depth); err == nil {
			if op == '+' {
				v.Add(v, w)
			} else {
				v.Sub(v, w)
			}
		}
	}
	return nil, err
}

func (p *calc) term(depth int) (*big.Rat, error) {
	v, err := p.unary(depth)
	for err == nil {
		op := p.peek()
		if op != '*' && op != '/' {
			return v, nil
		}
		p.i++
		var w *big.Rat
		if w, err = p.unary(depth); err == nil {
			if op == '*' {
				v.Mul(v, w)
			} else if w.Sign() == 0 {
				err = fmt.Errorf("division by zero")
			} else {
				v.Quo(v, w)
			}
		}
	}
	return nil, err
}

func (p *calc) unary(depth int) (*big.Rat, error) {
	switch p.peek() {
	case '-':
		p.i++
		v, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return v.Neg(v), nil
	case '+':
		p.i++
		return p.unary(depth + 1)
	}
	return p.atom(depth)
}

func (p *calc) atom(depth int) (*big.Rat, error) {
	if depth > maxCalcDepth {
		return nil, fmt.Errorf("nested too deep")
	}
	if p.peek() == '(' {
		p.i++
		v, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, fmt.Errorf("missing )")
		}
		p.i++
		return v, nil
	}
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.') {
		p.i++
	}
	lit := p.s[start:p.i]
	whole, frac, _ := strings.Cut(lit, ".")
	switch {
	case lit == "" || lit == ".":
		return nil, fmt.Errorf("a number expected at %d", start)
	case strings.Count(lit, ".") > 1:
		return nil, fmt.Errorf("malformed number %q", lit)
	case len(whole) > 1 && whole[0] == '0' && !strings.Contains(lit, ".") && strings.Trim(whole, "0") != "":
		return nil, fmt.Errorf("leading zero in %q", lit)
	}
	v, ok := new(big.Rat).SetString(whole + "." + frac + "0")
	if !ok {
		return nil, fmt.Errorf("malformed number %q", lit)
	}
	return v, nil
}
