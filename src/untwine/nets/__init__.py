"""Network building blocks: conv encoders/decoders and MLPs (FactorVAE's discriminator)."""

from untwine.nets.conv import ARCHITECTURES, Decoder, Encoder, check_image_shape
from untwine.nets.mlp import factorvae_discriminator, mlp

__all__ = [
    "ARCHITECTURES",
    "Decoder",
    "Encoder",
    "check_image_shape",
    "factorvae_discriminator",
    "mlp",
]
