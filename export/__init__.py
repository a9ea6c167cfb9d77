"""Export of the AdaIN network: TFLite models for Android and a Hub-style SavedModel."""
