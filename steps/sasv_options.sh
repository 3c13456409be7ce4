# shellcheck shell=bash
# The options of the real SASV recipes (egs/asvspoof2019_la/sasv, egs/asvspoof5/sasv), sourced before
# steps/recipe.sh: the two components, given trained (--sv-exp, --cm-exp) or trained by the recipe
# (the SV one on VoxCeleb1, --vox1-root; the CM one on the corpus's train), and their configs.
sv_exp=            # a trained speaker-verification experiment or package
cm_exp=            # a trained countermeasure experiment or package
vox1_root=         # VoxCeleb1 root (wav/ and the trial lists), to train the SV component here
sv_config=conf/sv/lora.yaml
cm_config=conf/cm/lora_xlsr.yaml
default_config=conf/sasv/default.yaml
corpus_usage="  --sv-exp DIR       a trained speaker-verification experiment or package (else --vox1-root trains --sv-config)
  --cm-exp DIR       a trained countermeasure experiment or package (else --cm-config is trained on the corpus's train)
  --vox1-root DIR    VoxCeleb1 root, to train the SV component
  --sv-config FILE   --cm-config FILE   the components' configs when trained here ($sv_config, $cm_config)
"
corpus_paths="sv_exp cm_exp vox1_root sv_config cm_config"
