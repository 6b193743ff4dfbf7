"""Trackers by detection (``iou``, ``sort``, ``bytetrack``, ``appearance``), their Kalman filter and the
appearance embeddings a detector's features give. Trackers hold no weights: they are a table of classes
(:data:`TRACKERS`), not entries of the model registry; ``dcv track --tracker`` offers their names."""

from dcvkit.models.track.embed import DetectorFeatures
from dcvkit.models.track.kalman import KalmanBoxFilter
from dcvkit.models.track.trackers import (SORT, TRACKERS, AppearanceTracker, ByteTrack, IoUTracker, Tracker, Tracks,
                                          assign, create_tracker)

__all__ = ["DetectorFeatures", "KalmanBoxFilter", "Tracker", "Tracks", "IoUTracker", "SORT", "ByteTrack",
           "AppearanceTracker", "TRACKERS", "create_tracker", "assign"]
