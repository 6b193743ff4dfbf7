"""Seeing inside the network: saliency maps (perturbation, gradient, SmoothGrad, occlusion, Grad-CAM),
feature maps and first-layer filters of a trained classifier. See :mod:`dcvkit.explain.saliency`."""

from dcvkit.explain.features import feature_maps, first_layer_filters, layer_names
from dcvkit.explain.model import Explainable, load_explainable, read_images
from dcvkit.explain.perturbation import perturbation_saliency
from dcvkit.explain.saliency import METHODS, SaliencyMap, saliency

__all__ = ["Explainable", "METHODS", "SaliencyMap", "feature_maps", "first_layer_filters", "layer_names",
           "load_explainable", "perturbation_saliency", "read_images", "saliency"]
