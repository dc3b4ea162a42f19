"""Per-pixel cues that anchor a task's decomposition: classical estimates computed once per video
before the fit (camera-motion residual, salient-object maps, dark-channel haze)."""
