package sampler

import (
	"strings"
	"testing"
)

func TestCalculate(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"1+2", "3"},
		{" 12 * (3 + 4) ", "84"},
		{"10/2", "5"}, // Python prints 5.0; GSM8K writes 5
		{"7/2", "3.5"},
		{"2/3", "0.6666666666666666"},
		{"0.1+0.2", "0.3"},
		{"1,000 * 3", "3000"},
		{"-3 - -2", "-1"},
		{"+4", "4"},
		{"--4", "4"},
		{"3.", "3"},
		{".5*4", "2"},
		{"012.5", "12.5"},
		{"00", "0"},
		{"2-3*4/6", "0"},
		{"123456789012345678901234567890 * 987654321", "121932631124828532112482853211126352690"},
		{"1/3*3", "1"},
	} {
		got, ok := Calculate(c.expr)
		if !ok || got != c.want {
			t.Errorf("%q: %q, %v; want %q", c.expr, got, ok, c.want)
		}
	}
	for _, expr := range []string{
		"", "   ", "2**10", "2 ** 10", "1/0", "1/(2-2)", "2(3)", "(2)(3)", "2 3", "012", "1..2", "1.2.3", ".",
		"(1+2", "1+2)", "abs(-1)", "__import__('os')", "1e5", "0x10", "1_000", "3 % 2", "2^3", "1 +",
		strings.Repeat("(", 150) + "1" + strings.Repeat(")", 150), strings.Repeat("1+", 600) + "1",
		"1" + strings.Repeat("0", 400) + "/3",
	} {
		if got, ok := Calculate(expr); ok {
			t.Errorf("%.40q: accepted as %q", expr, got)
		}
	}
}

func FuzzCalculate(f *testing.F) {
	f.Add("1,234 * (5 - 6.5) / 7")
	f.Fuzz(func(t *testing.T, expr string) {
		Calculate(expr)
	})
}
