"""``reenact doctor``: check camera, virtual camera, GPU/TensorRT, ONNX Runtime, dlib and weights.

Every check is a plain function returning a :class:`CheckResult` (OK / WARN / FAIL with the
exact fix), so tests can call them one by one. The command exits non-zero when live mode
could not run as asked (e.g. ``--output vcam`` and no virtual camera).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

OK, WARN, FAIL = "OK", "WARN", "FAIL"

V4L2_FIX = "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Reenact"
V4L2_INSTALL = "sudo apt install v4l2loopback-dkms   (Fedora: sudo dnf install v4l2loopback)"
OBS_FIX = "install OBS Studio (https://obsproject.com), click 'Start Virtual Camera' once, then stop it"


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome."""

    name: str  # short id: camera, vcam, display, gpu, tensorrt, onnxruntime, dlib, weights
    status: str  # OK | WARN | FAIL
    summary: str  # what was found
    fix: str = ""  # the exact command or step that fixes a WARN/FAIL

    @property
    def ok(self) -> bool:
        return self.status != FAIL


def check_camera(index: int = 0, opener: Callable[[int], object] | None = None) -> CheckResult:
    """Can OpenCV open camera ``index`` and read a frame?"""
    from reenact.live.capture import open_camera

    cap = (opener or open_camera)(index)
    try:
        if not cap.isOpened():
            fix = "connect a webcam and close other programs using it (Zoom, OBS, a browser tab)"
            if sys.platform.startswith("linux"):
                fix += "; check `ls -l /dev/video*` and `sudo usermod -aG video $USER` (then log in again)"
            elif sys.platform == "darwin":
                fix += "; allow camera access for your terminal in System Settings > Privacy & Security > Camera"
            return CheckResult("camera", FAIL, f"cannot open camera {index}", fix)
        ok, frame = cap.read()
        if not ok or frame is None:
            return CheckResult("camera", FAIL, f"camera {index} opens but gives no frames",
                               "close other programs using the camera, or try --source 1")
        return CheckResult("camera", OK, f"camera {index} gives {frame.shape[1]}x{frame.shape[0]} frames")
    finally:
        cap.release()


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def v4l2loopback_state(sys_root: Path = Path("/sys")) -> dict[str, object]:
    """Linux facts: module loaded?, exclusive_caps parameter, video devices and their names."""
    module = sys_root / "module" / "v4l2loopback"
    devices = {}
    for d in sorted((sys_root / "class" / "video4linux").glob("video*")):
        devices[f"/dev/{d.name}"] = _read(d / "name")
    return {
        "loaded": module.is_dir(),
        "exclusive_caps": _read(module / "parameters" / "exclusive_caps"),
        "devices": devices,
    }


def check_vcam(
    *,
    platform: str | None = None,
    sys_root: Path = Path("/sys"),
    backend: str | None = None,
    open_camera: Callable[[], tuple[str, Callable[[], None]]] | None = None,
) -> CheckResult:
    """Can pyvirtualcam open a virtual camera (and on Linux, is v4l2loopback set up for browsers)?"""
    platform = platform or sys.platform
    linux = platform.startswith("linux")
    notes: list[str] = []
    state: dict[str, object] = {}
    if linux:
        state = v4l2loopback_state(sys_root)
        devices = state["devices"]
        assert isinstance(devices, dict)
        notes.append("v4l2loopback " + ("loaded" if state["loaded"] else "not loaded"))
        if devices:
            notes.append("devices: " + ", ".join(f"{k} ({v or '?'})" for k, v in devices.items()))
        else:
            notes.append("no /dev/video* devices")

    def default_open() -> tuple[str, Callable[[], None]]:
        import pyvirtualcam

        cam = pyvirtualcam.Camera(1280, 720, 30, fmt=pyvirtualcam.PixelFormat.BGR, backend=backend)
        return str(cam.device), cam.close

    try:
        device, close = (open_camera or default_open)()
    except Exception as exc:  # noqa: BLE001 - every backend failure is reported
        detail = " ".join(str(exc).split())
        if linux:
            fix = V4L2_FIX if state.get("loaded") is False else f"sudo modprobe -r v4l2loopback && {V4L2_FIX}"
            fix += f"   [if modprobe cannot find the module: {V4L2_INSTALL}]"
        else:
            fix = OBS_FIX
        return CheckResult("vcam", FAIL, f"no virtual camera: {detail}; " + "; ".join(notes), fix)
    close()
    summary = f"virtual camera {device} opens at 1280x720" + ("; " + "; ".join(notes) if notes else "")
    if linux and state.get("loaded") and str(state.get("exclusive_caps", "")).split(",")[0] not in ("Y", "1"):
        return CheckResult(
            "vcam", WARN, summary + f"; exclusive_caps={state.get('exclusive_caps') or '?'}",
            f"Chrome, Zoom and Meet list the camera only with exclusive_caps=1: sudo modprobe -r v4l2loopback && {V4L2_FIX}",
        )
    return CheckResult("vcam", OK, summary)


def check_display() -> CheckResult:
    """Can a preview window be shown?"""
    from reenact.live.sinks import has_display

    if has_display():
        return CheckResult("display", OK, "a display is available for --output window")
    return CheckResult("display", FAIL, "no display (DISPLAY and WAYLAND_DISPLAY unset)",
                       "run on a desktop session, or use --output vcam / out.mp4 / null")


def check_gpu(run: Callable[[list[str]], str] | None = None) -> CheckResult:
    """NVIDIA GPU (nvidia-smi) and whether torch can use it (torch imported only if a GPU exists)."""
    if shutil.which("nvidia-smi") is None and run is None:
        return CheckResult("gpu", WARN, "no NVIDIA GPU found (nvidia-smi missing): live mode runs on the CPU",
                           "fine with the lite weights; for the GPU path install the NVIDIA driver")

    def default_run(cmd: list[str]) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout

    try:
        gpus = (run or default_run)(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]).strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckResult("gpu", WARN, f"nvidia-smi failed: {exc}", "reinstall the NVIDIA driver, then reboot")
    if importlib.util.find_spec("torch") is None:
        return CheckResult("gpu", WARN, f"GPU: {gpus}; torch not installed (the tensorrt/torch backends need it)",
                           "pip install 'reenact[tensorrt]'")
    import torch

    if not torch.cuda.is_available():
        return CheckResult("gpu", WARN, f"GPU: {gpus}; torch {torch.__version__} cannot use it (CPU build or driver mismatch)",
                           "pip install torch --index-url https://download.pytorch.org/whl/cu128")
    return CheckResult("gpu", OK, f"GPU: {gpus}; torch {torch.__version__} CUDA {torch.version.cuda}")


def check_tensorrt() -> CheckResult:
    """Is torch-tensorrt installed (found without importing it: the import is slow)?"""
    if importlib.util.find_spec("torch_tensorrt") is None:
        return CheckResult("tensorrt", WARN, "torch-tensorrt not installed: --backend tensorrt unavailable",
                           "on an NVIDIA GPU: pip install 'reenact[tensorrt]', then reenact build-engines")
    return CheckResult("tensorrt", OK, "torch-tensorrt installed (engines are built with reenact build-engines)")


def check_onnxruntime() -> CheckResult:
    """ONNX Runtime and its execution providers (the default live backend)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return CheckResult("onnxruntime", FAIL, f"onnxruntime cannot be imported: {exc}", "pip install onnxruntime")
    providers = ort.get_available_providers()
    return CheckResult("onnxruntime", OK, f"onnxruntime {ort.__version__}: {', '.join(providers)}")


def check_dlib() -> CheckResult:
    """dlib and its 68-point model file (found without importing face_recognition_models)."""
    if importlib.util.find_spec("dlib") is None:
        return CheckResult("dlib", FAIL, "dlib is not installed", "pip install dlib-bin")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return CheckResult("dlib", FAIL, "dlib model files missing", "pip install face-recognition-models")
    model = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not model.is_file():
        return CheckResult("dlib", FAIL, f"dlib model file not found: {model}",
                           "pip install --force-reinstall face-recognition-models")
    return CheckResult("dlib", OK, f"dlib 68-point model: {model}")


def check_weights(weights_dir: Path | None = None) -> CheckResult:
    """The default weights: ONNX models and their config JSON."""
    from reenact.paths import WEIGHTS_DIR

    d = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    onnx = sorted(p.name for p in d.glob("*.onnx")) if d.is_dir() else []
    configs = sorted(p.name for p in d.glob("*.json")) if d.is_dir() else []
    if not onnx or not configs:
        missing = "ONNX models" if not onnx else "config json"
        return CheckResult("weights", FAIL, f"no default weights in {d} ({missing} missing)",
                           "train and export them (reenact train, then reenact export), or pass --weights DIR")
    return CheckResult("weights", OK, f"weights in {d}: {', '.join(onnx + configs)}")


def check_source_file(source: str) -> CheckResult:
    """A video file given as --source: it exists, is a file and OpenCV reads a frame of it."""
    from reenact.errors import InputError
    from reenact.live.capture import VideoFileConfig, VideoFileSource

    src = VideoFileSource(VideoFileConfig(path=Path(source).expanduser(), paced=False))
    try:
        src.open()
    except InputError as exc:
        return CheckResult("source", FAIL, exc.message, exc.hint or "give a video file, or a camera index such as 0")
    finally:
        src.close()
    return CheckResult("source", OK, f"video {source}: {src.size[0]}x{src.size[1]} at {src.fps:.1f} fps")


def _is_file_source(source: str) -> bool:
    s = source.strip()
    return not s.isdigit() and not s.startswith("/dev/video")


def required_checks(output: str, source: str, detector: str = "dlib") -> set[str]:
    """Which checks must pass for ``reenact live`` with these options."""
    need = {"onnxruntime", "weights"}
    if detector == "dlib":
        need.add("dlib")
    if output == "vcam":
        need.add("vcam")
    elif output == "window":
        need.add("display")
    if source.strip().isdigit():
        need.add("camera")
    if _is_file_source(source):
        need.add("source")
    return need


def run_checks(output: str = "vcam", source: str = "0", weights: Path | None = None) -> list[CheckResult]:
    results = []
    if source.strip().isdigit():
        results.append(check_camera(int(source)))
    elif _is_file_source(source):
        results.append(check_source_file(source))
    results.append(check_vcam())
    if output == "window":
        results.append(check_display())
    results += [check_gpu(), check_tensorrt(), check_onnxruntime(), check_dlib(), check_weights(weights)]
    return results


@click.command()
@click.option("--output", default="vcam", show_default=True,
              help="The output live mode will use: vcam | window | null | a video file (relaxes the vcam check).")
@click.option("--source", default="0", show_default=True, help="The source live mode will use (a video file skips the camera).")
@click.option("--weights", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Weights folder to check (default: the shipped weights).")
def doctor(output: str, source: str, weights: Path | None) -> int:
    """Check camera, virtual camera, GPU/TensorRT, ONNX Runtime, dlib and weights; print the fix for each problem.

    Exits 1 when `reenact live` could not run with the given --output and --source, 2 when
    --output is not one live knows.
    """
    from reenact.errors import ReenactError
    from reenact.live.sinks import FILE_SUFFIXES, SINKS

    if output not in SINKS and Path(output).suffix.lower() not in FILE_SUFFIXES:
        raise ReenactError(f"unknown output {output!r}; expected one of {', '.join(SINKS)} or a path ending in "
                           f"{', '.join(FILE_SUFFIXES)}", hint="the same values as `reenact live --output`")
    results = run_checks(output, source, weights)
    need = required_checks(output, source)
    for r in results:
        tag = {OK: "  OK ", WARN: " WARN", FAIL: " FAIL"}[r.status]
        note = "" if r.ok or r.name in need else " (not needed for this output/source)"
        click.echo(f"[{tag}] {r.name:<11} {r.summary}{note}")
        if r.fix and r.status != OK:
            click.echo(f"        fix: {r.fix}")
    blocking = [r.name for r in results if not r.ok and r.name in need]
    if blocking:
        click.echo(f"\nlive mode cannot run as asked (--output {output} --source {source}): fix {', '.join(blocking)}", err=True)
        return 1
    click.echo("\nlive mode can run as asked.")
    return 0
