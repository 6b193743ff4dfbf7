"""Scene-graph models (registry family ``scenegraph``, trained by ``dcv scenegraph train``; their face:
:mod:`.base`), from blind to seeing: ``frequency`` (the predicate prior of the two classes, Motifs'
baseline), ``geometry`` (box-pair geometry + classes) and ``visual`` (subject, object and union-box RoI
features + geometry + classes). All three add the frequency bias and share the RoI object classifier."""

from dcvkit.models.scenegraph import frequency, geometry, visual  # noqa: F401  (registers them)
from dcvkit.models.scenegraph.base import GraphOutput, SceneGraphModel
from dcvkit.models.scenegraph.frequency import FrequencyModel
from dcvkit.models.scenegraph.geometry import GeometryModel
from dcvkit.models.scenegraph.visual import VisualRelationModel

__all__ = ["SceneGraphModel", "GraphOutput", "FrequencyModel", "GeometryModel", "VisualRelationModel"]
