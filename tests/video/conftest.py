"""A short video made from the bundled photos with known ground truth, encoded and anonymized once per session.

The clip (320 x 240, 12 fps, 3 s, an AAC tone): Tiger Woods moves across the left
half for the first shot; Bill Gates enters at frame 6 and leaves after frame 14;
a scene cut at frame 18 (another background) shows Tiger Woods again (another
photo) and Kate Hudson, both moving.
"""

from __future__ import annotations

import pytest

from tests.conftest import SAMPLE

pytest.importorskip("av", reason="videos need PyAV: pip install 'anonfaces[video]'")

FRAMES, CUT = 36, 18


def appearances():
    from anonfaces.video.synthetic import Appearance

    s = SAMPLE
    return [Appearance("Tiger_Woods", str(s / "Tiger_Woods/Tiger_Woods_0001.jpg"), 0, 17, (10, 60), (80, 50), 110),
            Appearance("Bill_Gates", str(s / "Bill_Gates/Bill_Gates_0001.jpg"), 6, 14, (200, 70), (190, 100), 110),
            Appearance("Tiger_Woods", str(s / "Tiger_Woods/Tiger_Woods_0002.jpg"), 18, 35, (150, 60), (120, 70), 110),
            Appearance("Kate_Hudson", str(s / "Kate_Hudson/Kate_Hudson_0001.jpg"), 18, 35, (10, 90), (40, 80), 100)]


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """(folder holding clip.mp4, its `SyntheticVideo` ground truth)."""
    from anonfaces.video.synthetic import make_video

    folder = tmp_path_factory.mktemp("videos")
    video = make_video(folder / "clip.mp4", appearances(), frames=FRAMES, cuts=(CUT,))
    return folder, video


@pytest.fixture(scope="session")
def anonymized(clip, tmp_path_factory):
    """The clip anonymized at k = 2 (every frame encoded, in this process): (run, out folder)."""
    from anonfaces.pipeline import anonymize_dataset

    folder, _ = clip
    out = tmp_path_factory.mktemp("video-run") / "out"
    run = anonymize_dataset(folder / "clip.mp4", out, k=2, jobs=1, progress=False)
    return run, out
