"""Segmentation (and reconstruction) models: one encoder-decoder family, with or without skips."""

from dcvkit.models.segment import external, unet  # noqa: F401
from dcvkit.models.segment.unet import ClassifierEncoder, Decoder, EncoderDecoder, SectionEncoder, section

__all__ = ["EncoderDecoder", "SectionEncoder", "ClassifierEncoder", "Decoder", "section"]
