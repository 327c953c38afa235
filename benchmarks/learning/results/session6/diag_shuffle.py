"""Sound dependence of each selected checkpoint's maps on synthetic VGG-SS:
AP50 with the clip's own audio vs with another clip's audio (batch rolled by one)."""
import sys, types, json, glob, importlib
import torch
sys.path.insert(0, "/work/main/benchmarks/learning")
import ssl_synthetic as S
from avbench.benchmarks import evaluate
torch.set_num_threads(1)
args = types.SimpleNamespace(num_workers=0, data=[], vggsound_root="/tmp/lb6/data/vggsound", flickr_root="/tmp/lb6/data/flickr")
dm = S.build_datamodules(args)["vggss"]; dm.setup("test")
from avbench.models import REGISTRY
out = {}
for ck in sorted(glob.glob("/tmp/lb6/results/_work/synthetic/*/checkpoints/best.ckpt")):
    job = ck.split("/")[-3]; name = job.split(".")[0]
    model = REGISTRY[name].load_from_checkpoint(ck, map_location="cpu").eval()
    orig = model.localize
    row = {}
    for mode in ("own", "other"):
        def loc(batch, _o=orig, _m=mode):
            if _m == "other":
                batch = dict(batch); batch["audio"] = torch.roll(batch["audio"], 1, 0)
            return _o(batch)
        model.localize = loc
        r = evaluate(model, "vggss", dm, progress=False, raise_errors=True)
        row[mode] = round(float(r.metrics["ap50"]), 3)
    out[job] = row
    print(job, row, flush=True)
json.dump(out, open("/work/ev6/diag_shuffle.json", "w"), indent=1)
