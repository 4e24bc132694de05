// Package docs holds gochat's guides, as Markdown beside this file: installing it, a
// tutorial from data to a chat model, inference, troubleshooting, the API, and gochat set
// beside nanochat. The package has no code; its tests keep the guides true:
//
//   - every `sh` block runs, in order, on loopback stand-ins for the downloads and at the
//     reduced sizes the guides' variables allow (a block tagged with a machine, as
//     ```sh gpu, is not run here, but every gochat command in it must name real commands
//     and flags);
//   - every `text` block that starts with "$ " is a transcript: its command runs and
//     must print the lines below it ("…" stands for any text), which is how the
//     messages quoted in troubleshooting.md are checked to be the ones gochat prints (one
//     tagged with a system, as ```text linux, runs there only);
//   - every relative link and anchor resolves;
//   - every exported identifier of the module has a doc comment.
package docs
