"""`anonfaces verify` on a folder holding anonymized videos: the run's videos pass, a tagged or untouched one does not."""

from __future__ import annotations

import json
import shutil

from anonfaces.release.verify import verify_release


def _copy_run(run, out, tmp_path):
    dst, private = tmp_path / "out", tmp_path / "out.private"
    shutil.copytree(out, dst)
    shutil.copytree(run.private, private)
    return dst, private


def _video_output(private) -> str:
    record = json.loads((private / "videos" / "run.json").read_text())
    (video,) = [v["output"] for v in record["videos"] if v.get("output")]
    return video


def test_verify_passes_the_runs_videos(anonymized, tmp_path):
    run, out = anonymized
    dst, private = _copy_run(run, out, tmp_path)
    report = verify_release(dst, private, jobs=1, video_fps=4)
    assert report.ok, [str(f) for f in report.findings]
    assert report.checked["video"] == 1


def test_verify_fails_a_video_with_tags_or_faces_left(anonymized, clip, tmp_path):
    import av

    run, out = anonymized
    dst, private = _copy_run(run, out, tmp_path)
    name = _video_output(private)
    # the original clip, with a title tag, put where the anonymized video was: faces left in and metadata
    folder, _ = clip
    with av.open(str(folder / "clip.mp4")) as src, av.open(str(dst / name), "w") as tagged:
        tagged.metadata["title"] = "Tiger Woods at the lab"
        streams = {s.index: tagged.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                tagged.mux(packet)
    report = verify_release(dst, private, jobs=1, video_fps=4)
    checks = {(f.check, f.path) for f in report.findings}
    assert ("metadata", name) in checks and ("face", name) in checks, [str(f) for f in report.findings]
    # an unlisted video is not a photo: still refused
    shutil.copy(folder / "clip.mp4", dst / "extra.mp4")
    report = verify_release(dst, private, faces=False)
    assert any(f.check == "file" and f.path == "extra.mp4" for f in report.findings)
