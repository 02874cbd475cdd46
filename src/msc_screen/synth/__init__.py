"""Synthetic FHIR R4 populations with planted, labelled rule triggers (for scale tests, demos
and benchmarks). Which codes trigger a rule comes from the knowledge base's value sets."""

from .generate import SynthConfig, generate, load_prevalence
from .plant import Planter

__all__ = ["Planter", "SynthConfig", "generate", "load_prevalence"]
