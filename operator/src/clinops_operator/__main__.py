"""``python -m clinops_operator``: the FeaturePipeline operator's command line."""

from clinops_common.cli import service_app

app = service_app(
    "clinops-operator",
    "kopf operator: reconciles FeaturePipeline resources into Spark applications and trainer Jobs.",
    needs=[],
)

if __name__ == "__main__":
    app()
