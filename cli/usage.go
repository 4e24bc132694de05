package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gochat/backend"

	"github.com/urfave/cli/v2"
)

// guard makes every misuse of the command line a one-line error that says what would work:
// an unknown command names the nearest ones, an unknown flag the nearest flag, and flags
// written after a positional argument (where the parser stops reading flags) give the
// command line in the order that works.
func guard(app *cli.App) {
	app.Action = unknownCommand(app.Name, app.Commands)
	app.OnUsageError = usageError(app.Name, app.Flags)
	for _, c := range app.Commands {
		guardCommand(c, app.Name)
	}
}

// guardCommand guards c, whose parent's command line is parent ("gochat train").
func guardCommand(c *cli.Command, parent string) {
	path := parent + " " + c.Name
	c.OnUsageError = usageError(path, c.Flags)
	if len(c.Subcommands) > 0 {
		if c.Action == nil {
			c.Action = unknownCommand(path, c.Subcommands)
		}
		for _, s := range c.Subcommands {
			guardCommand(s, path)
		}
		return
	}
	action := c.Action
	c.Action = func(ctx *cli.Context) (err error) {
		if err := flagsAfterArguments(ctx, c.Flags); err != nil {
			return err
		}
		defer func() { // a device's memory spent, which Make cannot return as an error
			r := recover()
			if oom, ok := r.(backend.OutOfMemory); ok {
				err = oom
			} else if r != nil {
				panic(r)
			}
		}()
		return action(ctx)
	}
}

// unknownCommand is the action of a command group: its help without arguments, an error
// naming the nearest commands with one.
func unknownCommand(path string, commands []*cli.Command) cli.ActionFunc {
	return func(ctx *cli.Context) error {
		if !ctx.Args().Present() {
			return cli.ShowSubcommandHelp(ctx)
		}
		name := ctx.Args().First()
		var names []string
		for _, c := range commands {
			if !c.Hidden && c.Name != "help" {
				names = append(names, c.Name)
			}
		}
		if near := nearest(name, names); len(near) > 0 {
			return fmt.Errorf("`%s %s`: no such command; did you mean `%s %s`?", path, name, path, strings.Join(near, "` or `"+path+" "))
		}
		return fmt.Errorf("`%s %s`: no such command; `%s` has %s", path, name, path, strings.Join(names, ", "))
	}
}

// undefinedFlag finds the name in the flag parser's complaint about a flag it does not know.
var undefinedFlag = regexp.MustCompile(`flag provided but not defined: -+(\S+)`)

// usageError turns the flag parser's complaint into one line, with the nearest flag for a
// misspelt one, instead of the whole help.
func usageError(path string, flags []cli.Flag) cli.OnUsageErrorFunc {
	return func(_ *cli.Context, err error, _ bool) error {
		if m := undefinedFlag.FindStringSubmatch(err.Error()); m != nil {
			if near := nearest(m[1], flagNames(flags)); len(near) > 0 {
				return fmt.Errorf("`%s` has no flag --%s; did you mean --%s?", path, m[1], strings.Join(near, " or --"))
			}
			return fmt.Errorf("`%s` has no flag --%s (`%s --help` lists them)", path, m[1], path)
		}
		return fmt.Errorf("`%s`: %v (`%s --help` lists the flags)", path, err, path)
	}
}

// flagsAfterArguments refuses a command line whose flags follow a positional argument:
// the parser took them as arguments. The error shows the line in the order that works.
func flagsAfterArguments(ctx *cli.Context, flags []cli.Flag) error {
	args := ctx.Args().Slice()
	var moved, rest []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		f := flagNamed(flags, name)
		if !strings.HasPrefix(args[i], "-") || f == nil {
			rest = append(rest, args[i])
			continue
		}
		moved = append(moved, args[i])
		if _, isBool := f.(*cli.BoolFlag); !isBool && !hasValue && i+1 < len(args) {
			i++
			moved = append(moved, args[i])
		}
	}
	if len(moved) == 0 {
		return nil
	}
	// The root command's arguments, the longest in the lineage, are the whole line after the
	// program's name: the commands and the flags read so far, then args.
	var all []string
	for _, l := range ctx.Lineage() {
		if a := l.Args().Slice(); len(a) > len(all) {
			all = a
		}
	}
	head := all[:len(all)-len(args)]
	line := strings.Join(slices.Concat([]string{ctx.App.Name}, quoteAll(head), quoteAll(moved), quoteAll(rest)), " ")
	return fmt.Errorf("flags come before arguments: %s", line)
}

// quoteAll quotes the arguments a shell would split.
func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "" || strings.ContainsAny(a, " \t'\"$*?()&;|<>") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return out
}

// flagNamed is the flag of flags that has name among its names, or nil.
func flagNamed(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

func flagNames(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()[0])
	}
	return names
}

// nearest returns the candidates within a third of name's length of edits (at least one,
// at most three) of it, the nearest first.
func nearest(name string, candidates []string) []string {
	limit := min(3, max(1, len(name)/3))
	best := limit + 1
	var out []string
	for _, c := range candidates {
		switch d := editDistance(name, c); {
		case d < best:
			best, out = d, []string{c}
		case d == best:
			out = append(out, c)
		}
	}
	return out
}

// editDistance is the Damerau–Levenshtein distance (optimal string alignment): insertions,
// deletions, substitutions and swaps of neighbours count one each.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
