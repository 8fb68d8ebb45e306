from camerapose_cli.cli import app

app()
