"""msc-screen: screening for contraindications to intravenous mesenchymal stem/stromal cell
therapy from FHIR R4 records, questionnaires and clinical notes."""

from .api import screen, screen_all, screen_records
from .errors import InputError, KnowledgeError, MscScreenError
from .model import Assessment, Evidence, Finding

__version__ = "0.1.0"
__all__ = [
    "Assessment",
    "Evidence",
    "Finding",
    "InputError",
    "KnowledgeError",
    "MscScreenError",
    "__version__",
    "screen",
    "screen_all",
    "screen_records",
]
