"""The causal integer predictor that centres each subpixel's softmax.

The network's 256-way softmax is over the *residual* symbol r = (x - pred) mod 256, where pred is a
fixed integer prediction from already-coded neighbours (LOCO-I's median edge detector, MED, plus the
previous channel's prediction error for G and B). This is a cyclic relabelling of the 256 outcomes, so
it is still a 256-way softmax over the subpixel value; it only spares the network from learning where
the peak is, which is what makes training on two CPU cores practical (docs/models.md).

Everything here is integer arithmetic, used unchanged by training and by both coding paths.
"""
import torch


def med(left: torch.Tensor, up: torch.Tensor, upleft: torch.Tensor) -> torch.Tensor:
    """Median edge detector (Weinberger et al., LOCO-I). Integer tensors of any shape, same shape out."""
    lo = torch.minimum(left, up)
    hi = torch.maximum(left, up)
    return torch.where(upleft >= hi, lo, torch.where(upleft <= lo, hi, left + up - upleft))


def predict(med_now: torch.Tensor, x_prev: torch.Tensor | None, med_prev: torch.Tensor | None) -> torch.Tensor:
    """Prediction for one channel: its MED, corrected by the previous channel's MED error (same pixel)."""
    if x_prev is None:
        return med_now
    return (med_now + x_prev - med_prev).clamp(0, 255)


PREDICTORS = ("med", "none")


def image_predictions(x: torch.Tensor, predictor: str = "med") -> torch.Tensor:
    """Predictions for whole images: x (B, C, H, W) -> pred (B, C, H, W), same dtype (float keeps gradients).

    Pixels outside the image count as 0, the same zero padding the network sees at tile borders.
    predictor "none" predicts 0, so residuals are the raw values: the paper's plain softmax.
    """
    if predictor == "none":
        return torch.zeros_like(x)
    padded = torch.nn.functional.pad(x, (1, 0, 1, 0))  # (B, C, H+1, W+1), a zero row on top, a zero column left
    left = padded[:, :, 1:, :-1]
    up = padded[:, :, :-1, 1:]
    upleft = padded[:, :, :-1, :-1]
    m = med(left, up, upleft)  # (B, C, H, W)
    preds = [predict(m[:, 0], None, None)]
    for c in range(1, x.shape[1]):
        preds.append(predict(m[:, c], x[:, c - 1], m[:, c - 1]))
    return torch.stack(preds, dim=1)


def image_residuals(x: torch.Tensor, predictor: str = "med") -> torch.Tensor:
    """Residual symbols of whole images: x (B, C, H, W) integers 0..255 -> r (B, C, H, W) in 0..255."""
    x = x.long()
    return (x - image_predictions(x, predictor)) % 256
