"""Files: audio, Kaldi data directories, trials and score files, corpus-preparation helpers,
and the one atomic writer (:mod:`spkpeft.io.atomic`)."""
