"""The voice stage: a voice folder and its model card (``folder``), importing community
So-VITS-SVC / RVC models (``community``) and training (``train_ddsp`` for the voices aisinger
trains, ``train_vits`` for fine-tuning an imported community model)."""
