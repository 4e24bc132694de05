"""Makes transformers.safetensors: what HuggingFace transformers computes with the folder
`gochat checkpoint export --format hf` writes for testdata/golden/core/model (a d2 model
trained by gochat on Go's sources), for checkpoint's TestHFTransformers.

    gochat checkpoint export --format hf --checkpoints testdata/golden/core --model-tag model \
        --tokenizer testdata/golden/core/model/tokenizer --out /tmp/hf
    python3 make_fixture.py /tmp/hf transformers.safetensors

Run on a CPU in float32 with the eager attention, so that nothing but float32 rounding
separates transformers' numbers from gochat's.
"""
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

src, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(src)
model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, attn_implementation="eager").eval()

# Two rows of 24 tokens: bos, then Go text through transformers' own tokenizer.
texts = ['package main\n\nimport (\n\t"fmt"\n\t"strings"\n)\n\nfunc main() {\n\tfmt.Println(strings.ToUpper("hello, world"))\n}\n',
         "// Copyright 2009 The Go Authors. All rights reserved.\n// Use of this source code is governed by a BSD-style\n// license that can be found in the LICENSE file.\n"]
rows = []
for t in texts:
    ids = [tok.bos_token_id] + tok.encode(t, add_special_tokens=False)
    assert len(ids) >= 24, len(ids)
    rows.append(ids[:24])
ids = torch.tensor(rows)
with torch.no_grad():
    logits = model(ids).logits.float()

# Greedy decoding of 32 tokens after the first row's first 8, with the generation config
# the export wrote (it stops at <|assistant_end|> or <|bos|>).
greedy = model.generate(ids[:1, :8], max_new_tokens=32, do_sample=False)[0]

# The chat template on a conversation with a system message, two user turns and a reply.
messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is Go?"},
            {"role": "assistant", "content": "A programming language."}, {"role": "user", "content": "Who made it?"}]
chat = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
if not isinstance(chat, list):
    chat = chat["input_ids"]

save_file({"ids": ids, "logits": logits.contiguous(), "greedy": greedy.contiguous(), "chat_ids": torch.tensor(chat)}, out,
          metadata={"transformers": transformers.__version__, "torch": torch.__version__})
print("transformers", transformers.__version__, "greedy", greedy.tolist(), "chat", chat)
