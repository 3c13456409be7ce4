"""Tasks as siblings over the shared layers: :mod:`.base` (the interface and registry),
:mod:`.sv` (speaker verification), :mod:`.cls` (utterance classification); :mod:`.config`
(the whole configuration schema) and :mod:`.experiment` (experiment directories)."""
