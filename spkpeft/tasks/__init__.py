"""Tasks as siblings over the shared layers, each a folder that decides all six stages:
:mod:`.sv` (speaker verification), :mod:`.cls` (utterance classification), :mod:`.cm` (spoofing
countermeasures); :mod:`.base` (the interface and registry), :mod:`.labelled` (what the
``utt2label`` tasks share), :mod:`.registered` (every task, registered), :mod:`.config` (the
whole configuration schema), :mod:`.experiment` (experiment directories), :mod:`.results`
(``results.json`` of any task) and :mod:`.compare` (comparing experiments).

A task's folder may import :mod:`.base` and :mod:`.labelled`, never :mod:`.registered`,
:mod:`.config`, :mod:`.experiment`, :mod:`.results` or :mod:`.compare` (they import every task:
``tests/test_layers.py`` would find the cycle)."""
