"""Model parts shared by the tasks: layer aggregation, heads, losses, and the model that
chains upstream -> aggregation -> head (-> classifier)."""

from spkpeft.nn import pooled  # noqa: F401  (registers the pooled head next to ECAPA)
from spkpeft.nn import aasist  # noqa: F401  (registers the AASIST back-end)
from spkpeft.nn import lstm_head  # noqa: F401  (registers the LSTM back-end)
