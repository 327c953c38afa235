"""Is EZ-VSL seed 1's anti-localisation the audio embeddings' common component?
Evaluate the selected checkpoint's maps with a_n (as is), with the mean test-audio
embedding for every clip (sound-independent map), and with a_n minus that mean."""
import sys, json, types
import torch, torch.nn.functional as F
sys.path.insert(0, "/work/main/benchmarks/learning")
import ssl_synthetic as S
from avbench.models.ezvsl import EZVSL
from avbench.models.fnac import FNAC
from avbench.benchmarks import evaluate
from avbench.nn.similarity import paired_similarity
torch.set_num_threads(1)
ck = sys.argv[1]; cls = {"ezvsl": EZVSL, "fnac": FNAC}[sys.argv[2]]
model = cls.load_from_checkpoint(ck, map_location="cpu").eval()
args = types.SimpleNamespace(num_workers=0, data=[], vggsound_root="/tmp/lb6/data/vggsound", flickr_root="/tmp/lb6/data/flickr")
dms = S.build_datamodules(args)
dm = dms["vggss"]; dm.setup("test")
with torch.no_grad():
    A = torch.cat([model.audio_embedding(b["audio"]) for b in dm.test_dataloader()])
mean = A.mean(0)
print("mean pairwise cos", float((A @ A.T).mean()), "norm of mean", float(mean.norm()))
orig = model.localize
def make(mode):
    def loc(batch):
        v = model.visual_map(batch["image"]); a = model.audio_embedding(batch["audio"])
        if mode == "mean": a = mean.expand_as(a)
        if mode == "centred": a = a - mean
        return paired_similarity(v, a) / model.tau
    return loc
out = {}
for mode in ("as_is", "mean", "centred"):
    model.localize = make(mode)
    r = evaluate(model, "vggss", dm, progress=False, raise_errors=True)
    out[mode] = {k: round(float(v), 3) for k, v in r.metrics.items() if k in ("ap50", "mean_ciou")}
    print(mode, out[mode], flush=True)
