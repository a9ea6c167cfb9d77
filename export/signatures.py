"""What the exported models look like: one definition read by the exporter, the verifier,
the tests and the Android guide in BUILD.md (which the tests compare against this)."""

PREDICT = "predict"  # Signature key of adain_predict_<variant>.tflite.
TRANSFORM = "transform"  # Signature key of adain_transform_<variant>.tflite.
STYLE_IMAGE = "style_image"  # float32 [1, style_size, style_size, 3], RGB in [0, 1].
STYLE_VECTOR = "style_vector"  # float32 [1, 1, 1, 1024]: 512 channel means, then 512 stds.
CONTENT_IMAGE = "content_image"  # float32 [1, content_size, content_size, 3], RGB in [0, 1].
ALPHA = "alpha"  # float32 [1]: 0 = content, 1 = full style.
STYLIZED_IMAGE = "stylized_image"  # float32 [1, content_size, content_size, 3], RGB in [0, 1].
VECTOR_SIZE = 1024
VARIANTS = ("float32", "float16", "int8")
CONTENT_SIZE = 384
STYLE_SIZE = 256


def model_file(kind: str, variant: str) -> str:
    """adain_predict_int8.tflite and the like."""
    return f"adain_{kind}_{variant}.tflite"


def signature_table(content_size: int = CONTENT_SIZE, style_size: int = STYLE_SIZE) -> dict:
    """{signature key: ({input: shape}, {output: shape})}, all float32."""
    return {
        PREDICT: ({STYLE_IMAGE: [1, style_size, style_size, 3]},
                  {STYLE_VECTOR: [1, 1, 1, VECTOR_SIZE]}),
        TRANSFORM: ({CONTENT_IMAGE: [1, content_size, content_size, 3],
                     STYLE_VECTOR: [1, 1, 1, VECTOR_SIZE], ALPHA: [1]},
                    {STYLIZED_IMAGE: [1, content_size, content_size, 3]}),
    }
