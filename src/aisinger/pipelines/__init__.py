"""End-to-end jobs built from the stages: ``cover`` (song -> labelled cover), ``speak``
(text -> the voice, labelled) and ``demo`` (the README's main job)."""
