"""Shared pieces of gpucolo's distributed-training workload (dist_train.py): models, data, sharding.

Everything here is deterministic given --seed, so every rank and every gradient-sync method sees
the same initial parameters and the same data in the same order; the methods then differ only in
how gradients move (see dist_train.py).

Models (build_model)
  "smallcnn": 3x3 convs 3->16->32->64, each followed by ReLU and 2x2 max-pool, then
    fc (64 * (S//8)^2) -> 128 -> ReLU -> classes. No BatchNorm, so every gradient-sync method gives
    the same parameters up to float rounding. 156,074 parameters at S=32 and 10 classes.
  any torchvision classification builder name ("resnet18", "mobilenet_v2", ...), built with
    weights=None and num_classes=--num-classes (no downloads). Most of them use BatchNorm, which
    normalises over each rank's own shard of the batch, so results depend on the per-rank batch
    size: the distributed methods still agree with each other at the same world size and
    --batch-size (resnet18, 2 ranks: bit-identical on CPU), but not with a single process running
    the whole global batch, nor across world sizes. BN running statistics are per rank (DDP
    broadcasts rank 0's buffers every forward, all-reduce and PS keep each rank's own); rank 0
    evaluates with its own. Use smallcnn for the exact-equivalence check.
  --pretrained PATH: a local state_dict saved with torch.save (also accepted: a dict holding it
    under "state_dict" or "model"; a "module." prefix is stripped). Tensors whose shape does not
    match the model (e.g. a 1000-class ImageNet head with --num-classes 10) are skipped and named
    on stderr; the remaining keys must match.

Data
  synthetic (SyntheticImages): sample i of a split is randn(3,S,S) drawn from a generator seeded
    with (seed, split, i) plus 0.3 x a smooth per-class template (4x4 noise upsampled bilinearly
    to SxS); labels uniform from a seeded generator. Generated lazily per index, so DataLoader
    workers and large --image-size need no memory up front; identical on every rank.
  ImageFolder (--data-dir DIR): DIR/train and DIR/val class folders, both with the same class
    names. Deterministic transforms only (Resize(S * 8/7) + CenterCrop(S) + ImageNet Normalize),
    so the data seen is identical for every method.

Sharding (ShardBatches)
  Every epoch a permutation of the train set drawn from (seed, epoch); it is cut into global
  batches of batch_size x computing ranks (a trailing partial global batch is dropped, so every
  rank runs the same number of steps), and rank r takes elements [r*B, (r+1)*B) of every global
  batch. Same order for every method and for every world size with the same global batch.
"""
import sys

import torch
from torch import nn
from torch.utils.data import Dataset, Sampler

SMALLCNN = "smallcnn"


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        side = image_size // 8
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, 128), nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class ModelError(ValueError):
    """A model name or a --pretrained file that cannot be used (dist_train exits 2)."""


def torchvision_model_names():
    import torchvision.models as tvm

    try:
        return sorted(tvm.list_models(module=tvm))  # torchvision >= 0.14: classification only
    except (AttributeError, TypeError):
        return sorted(n for n, f in vars(tvm).items()
                      if callable(f) and n[:1].islower() and not n.startswith("_")
                      and n not in ("get_model", "get_weight", "list_models", "get_model_weights"))


def build_model(name: str, num_classes: int, image_size: int, seed: int,
                pretrained: str = None, log=None) -> nn.Module:
    """Build the model on the CPU with torch.manual_seed(seed): the same parameters on every rank."""
    torch.manual_seed(seed)
    if name == SMALLCNN:
        if image_size < 8:
            raise ModelError("smallcnn needs --image-size >= 8")
        model = SmallCNN(num_classes, image_size)
    else:
        import torchvision.models as tvm

        names = torchvision_model_names()
        if name not in names:
            raise ModelError(f"unknown model {name!r}: use {SMALLCNN!r} or a torchvision "
                             f"classification model ({', '.join(names)})")
        kwargs = {"weights": None, "num_classes": num_classes}
        if name in ("googlenet", "inception_v3"):
            kwargs.update(aux_logits=False, init_weights=True)  # one output, no unused params
        builder = tvm.get_model if hasattr(tvm, "get_model") else None
        model = builder(name, **kwargs) if builder else getattr(tvm, name)(**kwargs)
    if pretrained:
        load_pretrained(model, pretrained, log)
    return model


def load_pretrained(model: nn.Module, path: str, log=None) -> None:
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unreadable file is a bad argument
        raise ModelError(f"--pretrained {path}: cannot load: {e}") from e
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"--pretrained {path}: not a state_dict of tensors")
    obj = {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}
    own = model.state_dict()
    skipped = [k for k, v in obj.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in obj.items() if k not in skipped}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in skipped]
    if missing or unexpected:
        raise ModelError(f"--pretrained {path}: keys do not match the model "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    if skipped and log:
        log(f"--pretrained: kept the fresh init of {len(skipped)} tensor(s) whose shape differs: "
            f"{', '.join(skipped[:6])}")


class SyntheticImages(Dataset):
    """Learnable synthetic classification images, generated per index from the seed."""

    def __init__(self, n: int, image_size: int, num_classes: int, seed: int, split: int):
        self.n, self.size, self.split, self.seed = n, image_size, split, seed
        g = torch.Generator().manual_seed(seed * 1000003 + 7)  # templates: shared by all splits
        coarse = torch.randn(num_classes, 3, 4, 4, generator=g)
        self.templates = nn.functional.interpolate(
            coarse, size=(image_size, image_size), mode="bilinear", align_corners=False)
        gl = torch.Generator().manual_seed(seed * 1000003 + 11 + split)
        self.labels = torch.randint(0, num_classes, (n,), generator=gl)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(((self.seed * 4 + self.split) << 32) + int(i))
        y = int(self.labels[i])
        x = torch.randn(3, self.size, self.size, generator=g) + 0.3 * self.templates[y]
        return x, y


class DataError(ValueError):
    """A --data-dir that cannot be used (dist_train exits 2)."""


def image_folders(data_dir: str, image_size: int):
    import os

    from torchvision import datasets, transforms

    missing = [d for d in ("train", "val") if not os.path.isdir(os.path.join(data_dir, d))]
    if missing:
        raise DataError(f"--data-dir {data_dir}: missing {' and '.join(missing)}/ "
                        "(expected ImageNet-style train/ and val/ class folders)")
    tf = transforms.Compose([
        transforms.Resize(max(image_size, round(image_size * 8 / 7))),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    try:
        train = datasets.ImageFolder(os.path.join(data_dir, "train"), transform=tf)
        val = datasets.ImageFolder(os.path.join(data_dir, "val"), transform=tf)
    except (FileNotFoundError, RuntimeError) as e:
        raise DataError(f"--data-dir {data_dir}: {e}") from e
    if train.classes != val.classes:
        raise DataError(f"--data-dir {data_dir}: train/ has {len(train.classes)} classes, val/ "
                        f"{len(val.classes)}; they must have the same class folders")
    return train, val


class ShardBatches(Sampler):
    """Batches of indices for one rank: a seeded global order, cut into global batches."""

    def __init__(self, n: int, batch_size: int, shard: int, shards: int, seed: int,
                 max_steps: int = 0):
        self.n, self.b, self.shard, self.shards, self.seed = n, batch_size, shard, shards, seed
        self.epoch = 0
        steps = n // (batch_size * shards)
        self.steps = min(steps, max_steps) if max_steps > 0 else steps

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return self.steps

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        gb = self.b * self.shards
        for s in range(self.steps):
            start = s * gb + self.shard * self.b
            yield order[start:start + self.b]


def logits_of(out):
    """Model output -> logits tensor (torchvision heads may return named tuples)."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)):
        return out[0]
    raise TypeError(f"model returned {type(out).__name__}, expected a tensor of logits")


def warn(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
