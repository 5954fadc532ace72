"""``pytorch-mlp``: a feed-forward net (ReLU, dropout), Adam, positives weighted by neg/pos in the
loss (class imbalance), early stopping on validation AUROC; deterministic on CPU for a seed."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from clinops_common.model.onnx_graphs import mlp_graph
from clinops_trainer.evaluation import auroc
from clinops_trainer.families import Fitted, Progress

DEFAULTS: dict[str, Any] = {
    "hidden_units": [64, 32],
    "dropout": 0.1,
    "learning_rate": 1e-3,
    "weight_decay": 1e-5,
    "epochs": 30,
    "batch_size": 512,
    "patience": 5,
    "pos_weight": "balanced",
    "seed": 0,
}


def params(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    unknown = set(hyperparameters) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown pytorch-mlp hyperparameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    out = {**DEFAULTS, **hyperparameters}
    hidden = out["hidden_units"]
    out["hidden_units"] = [int(hidden)] if isinstance(hidden, int | float) else [int(h) for h in hidden]
    return out


def fit(  # noqa: PLR0915 - one training loop, read top to bottom
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    hyperparameters: dict[str, Any],
    *,
    threads: int,
    progress: Progress | None = None,
) -> Fitted:
    try:
        import torch
        from torch import nn
    except ImportError as err:  # the clinops image has the trainer without torch (gradient-boosted-trees only)
        raise RuntimeError("the pytorch-mlp family needs torch: run the trainer in the clinops-trainer image") from err

    hp = params(hyperparameters)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(int(hp["seed"]))
    gen = torch.Generator().manual_seed(int(hp["seed"]))

    layers: list[nn.Module] = []
    width = x_train.shape[1]
    for h in hp["hidden_units"]:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(float(hp["dropout"]))]
        width = h
    layers.append(nn.Linear(width, 1))
    net = nn.Sequential(*layers)

    pos = float(y_train.sum())
    neg = float(len(y_train) - pos)
    pw = hp["pos_weight"]
    pos_weight = neg / max(pos, 1.0) if pw == "balanced" else float(pw)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight]))
    opt = torch.optim.Adam(net.parameters(), lr=float(hp["learning_rate"]), weight_decay=float(hp["weight_decay"]))
    xt = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y_train, dtype=np.float32)).reshape(-1, 1)
    xv = torch.from_numpy(np.ascontiguousarray(x_val, dtype=np.float32))
    bs = int(hp["batch_size"])

    def margin_t(x: torch.Tensor) -> torch.Tensor:
        net.eval()
        with torch.no_grad():
            out: torch.Tensor = net(x).reshape(-1)
            return out

    best, best_state, best_epoch, since = -math.inf, copy.deepcopy(net.state_dict()), 0, 0
    history: list[dict[str, float]] = []
    for epoch in range(1, int(hp["epochs"]) + 1):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for start in range(0, len(xt), bs):
            idx = perm[start : start + bs]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        val_auroc = auroc(y_val, margin_t(xv).numpy())
        row = {"train_loss": total / len(xt), "val_auroc": val_auroc}
        history.append(row)
        if progress:
            progress(epoch, row)
        if val_auroc > best:
            best, best_state, best_epoch, since = val_auroc, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            since += 1
            if since >= int(hp["patience"]):
                break
    net.load_state_dict(best_state)
    net.eval()
    linears = [m for m in net if isinstance(m, nn.Linear)]
    weights = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears]

    def margin(x: np.ndarray) -> np.ndarray:
        return margin_t(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy().astype(np.float64)

    def native_proba(x: np.ndarray, a: float, c: float) -> np.ndarray:
        z = margin_t(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return torch.sigmoid(z * torch.tensor(a, dtype=torch.float32) + torch.tensor(c, dtype=torch.float32)).numpy()

    def onnx(a: float, c: float) -> bytes:
        w_last, b_last = weights[-1]
        folded = [*weights[:-1], (w_last * np.float32(a), b_last * np.float32(a) + np.float32(c))]
        return mlp_graph(folded)

    hp["pos_weight_value"] = pos_weight
    return Fitted("pytorch-mlp", hp, history, margin, onnx, native_proba, best_iteration=best_epoch)
