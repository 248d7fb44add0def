"""The contrastive losses: CLIP's (open_clip's ClipLoss), and paper A's SB and HNB that LABCLIP trains with and the
fine-tuned CLIP baseline (a train_clip run with hard_negatives) trains its towers with.

SB and HNB take the temperature as t (logits times exp(t)), as LABCLIP's authors and open_clip's `logit_scale`
parameter store it; CLIP's loss takes the scale itself, as open_clip's model returns it.
"""

import torch
import torch.nn.functional as F


def clip_loss(image_features, text_features, logit_scale):
    """CLIP's symmetric InfoNCE (open_clip's ClipLoss): the mean of the image-to-text and text-to-image
    cross-entropies of the B x B logits logit_scale * image_features @ text_features.T, the matching pairs
    on the diagonal."""
    from open_clip.loss import ClipLoss

    return ClipLoss()(image_features, text_features, logit_scale)


def sb_loss(image: torch.Tensor, text: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy over the B x B matrix exp(t) * image @ text.T (inputs normalised)."""
    logits = t.exp() * image @ text.T
    target = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def hnb_logits(image: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """B x 2B logits: columns are the B captions, then their B hard negatives."""
    return t.exp() * image @ torch.cat([positive, negative]).T


def hnb_loss(image: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Image-to-text cross-entropy over all 2B texts, averaged with text-to-image cross-entropy for the
    B positive texts only (a hard negative has no image of its own in the batch)."""
    logits = hnb_logits(image, positive, negative, t)
    target = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T[: len(image)], target)) / 2
