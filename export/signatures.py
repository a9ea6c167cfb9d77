"""What the exported models look like: one definition read by the exporter, the verifier,
the tests and the Android guide in BUILD.md (which the tests compare against this)."""

PREDICT = "predict"  # Signature key of <prefix>_predict_<variant>.tflite.
TRANSFORM = "transform"  # Signature key of <prefix>_transform_<variant>.tflite.
STYLE_IMAGE = "style_image"  # float32 [1, style_size, style_size, 3], RGB in [0, 1].
STYLE_VECTOR = "style_vector"  # float32 [1, 1, 1, 2C]: the bottleneck's C channel means, then C stds.
CONTENT_IMAGE = "content_image"  # float32 [1, content_size, content_size, 3], RGB in [0, 1].
ALPHA = "alpha"  # float32 [1]: 0 = content, 1 = full style.
STYLIZED_IMAGE = "stylized_image"  # float32 [1, content_size, content_size, 3], RGB in [0, 1].
VECTOR_SIZE = {"adain": 1024, "mobile": 256}  # 2C per network (--method).
PREFIX = {"adain": "adain", "mobile": "student"}  # File names of each network's models.
VARIANTS = ("float32", "float16", "int8")
CONTENT_SIZE = 384
STYLE_SIZE = 256


def model_file(kind: str, variant: str, method: str = "adain") -> str:
    """adain_predict_int8.tflite, student_transform_int8.tflite and the like."""
    return f"{PREFIX[method]}_{kind}_{variant}.tflite"


def manifest_file(method: str = "adain") -> str:
    """adain_tflite.json, student_tflite.json: what export.tflite records of a folder's models."""
    return f"{PREFIX[method]}_tflite.json"


def signature_table(content_size: int = CONTENT_SIZE, style_size: int = STYLE_SIZE,
                    method: str = "adain") -> dict:
    """{signature key: ({input: shape}, {output: shape})}, all float32."""
    vector = VECTOR_SIZE[method]
    return {
        PREDICT: ({STYLE_IMAGE: [1, style_size, style_size, 3]},
                  {STYLE_VECTOR: [1, 1, 1, vector]}),
        TRANSFORM: ({CONTENT_IMAGE: [1, content_size, content_size, 3],
                     STYLE_VECTOR: [1, 1, 1, vector], ALPHA: [1]},
                    {STYLIZED_IMAGE: [1, content_size, content_size, 3]}),
    }
