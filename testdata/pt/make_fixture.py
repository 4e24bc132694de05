# Makes the PyTorch checkpoints of gochat's .pt import test (checkpoint/pt_test.go), and
# checks a file gochat exported. Run with PyTorch (2.11 made these):
#   OUT=testdata/pt python3 make_fixture.py make
#   python3 make_fixture.py check model.pt expected.bin   # expected: the float32 values, in state_dict order
import json, os, struct, sys
import torch, torch.nn as nn

out = os.environ.get("OUT", ".")
cfg = dict(sequence_len=16, vocab_size=64, n_layer=2, n_head=4, n_kv_head=2, n_embd=32)
C, H, KV, hd = 32, 4, 2, 8

class Attn(nn.Module):
    def __init__(s):
        super().__init__()
        s.c_q = nn.Linear(C, H*hd, bias=False); s.c_k = nn.Linear(C, KV*hd, bias=False)
        s.c_v = nn.Linear(C, KV*hd, bias=False); s.c_proj = nn.Linear(C, C, bias=False)
class MLP(nn.Module):
    def __init__(s):
        super().__init__()
        s.c_fc = nn.Linear(C, 4*C, bias=False); s.c_proj = nn.Linear(4*C, C, bias=False)
class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.attn = Attn(); s.mlp = MLP()
class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.transformer = nn.ModuleDict(dict(wte=nn.Embedding(64, C), h=nn.ModuleList([Block() for _ in range(2)])))
        s.lm_head = nn.Linear(C, 64, bias=False)

torch.manual_seed(0)
m = GPT()
m.transformer.wte.to(dtype=torch.bfloat16)  # as nanochat does on CUDA
sd = m.state_dict()
names = list(sd.keys())
def dump(path, tensors):
    with open(path, "wb") as f:
        for n in names:
            f.write(tensors[n].float().contiguous().numpy().tobytes())
if sys.argv[1] == "make":
    os.makedirs(f"{out}/d2", exist_ok=True)
    torch.save(sd, f"{out}/d2/model_000005.pt")
    meta = dict(step=5, val_bpb=1.5, model_config=cfg, user_config=dict(depth=2), device_batch_size=2, max_seq_len=16)
    json.dump(meta, open(f"{out}/d2/meta_000005.json", "w"))
    # torch.compile's prefix, and a transposed (non-contiguous) storage view
    sd2 = {"_orig_mod." + k: v for k, v in sd.items()}
    sd2["_orig_mod.lm_head.weight"] = sd["lm_head.weight"].t().contiguous().t()
    torch.save(sd2, f"{out}/d2/model_000006.pt")
    meta["step"] = 6
    json.dump(meta, open(f"{out}/d2/meta_000006.json", "w"))
    dump(f"{out}/expected.bin", sd)
    json.dump(names, open(f"{out}/names.json", "w"))
    print(torch.__version__, "wrote", names[:3], "...")
else:  # check: load gochat's export with weights_only and strictly into the module
    path, expected = sys.argv[2], sys.argv[3]
    sd = torch.load(path, weights_only=True)
    raw = open(expected, "rb").read()
    vals = struct.unpack(f"<{len(raw)//4}f", raw)
    k = 0
    for n in names:
        t = sd[n]
        flat = t.flatten().tolist()
        assert t.dtype == torch.float32 and t.is_contiguous(), (n, t.dtype)
        assert flat == list(vals[k:k+len(flat)]), n
        k += len(flat)
    assert k == len(vals)
    GPT().load_state_dict(sd, strict=True)
    print("torch", torch.__version__, "loaded", len(sd), "tensors from gochat's export, equal, strict load ok; keys in order:", list(sd.keys()) == names)
