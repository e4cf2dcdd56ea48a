"""naap-db: settings -> NaapDatabase -> stack outputs."""

from components.database import NaapDatabase, export_outputs
from components.settings import load_settings

export_outputs(NaapDatabase("naap", load_settings()))
