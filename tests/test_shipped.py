"""The shipped default model: real-photo round trip, coder efficiency, golden bytes, packaging."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pixzip import codec, container, registry
from pixzip.image import load_pixels
from tests.test_container import version1

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "astronaut.png"
# SHA-256 of samples/astronaut.png compressed with the shipped default model (default tile and chunk), as
# written (format version 7, the adaptive stage), with the stage's earlier settings (versions 6, 5 and 4), without
# the adaptive stage (version 3) and without sharpness
# either (version 2: every integer the network computes, the same since the model shipped). Change them only
# on purpose (a new default model, tile size or format version), never to make a test pass.
GOLDEN_V7 = "c96255bcee13c336ff25e1b871b68d2f3bb0318277176696cc3f66c2c6729e7a"
GOLDEN_V6 = "bae51c2e35efc853ddb51ace121bac8bea573e37806bae25af8a30bc721432ad"
GOLDEN_V5 = "bdd5266cb812a8a5160360ee4a79b0fb101f08bb03a981aa9f61eea2b011adb6"
GOLDEN_V4 = "3cba2dc0d191dd9b0cdac17870514cc6fcf14c8ae95e6fa690e8faa4a950f3c2"
GOLDEN = "9c38e664599a1506f528a35c3afc22b08ff7a123decf6503caaaa21ef07d4214"
GOLDEN_V2 = "da369a3545136bc0c1b140883cca5c015eb92e0fa857e2563458e43446457ffe"
# The first release's default model, still shipped (not in the manifest) so that its files decode: the
# same with it, and with 64 x 64 tiles in chunks of 256, the first release's defaults, written as a version 1
# file - pinned since the first release, so they show that later work changed no integer on its coding path.
FIRST_DEFAULT = REPO / "models" / "pixelcnn-7d13f387.npz"
GOLDEN_PREVIOUS = "ab3d2bf0c611aad7ef15dd0fa9eea3cee6126ecf1123ae819328ec502c100125"
GOLDEN_TILE64 = "a041411b93dd7f98d5735b868938c19ca9e0c162800392ececc1360663838d86"


# SHA-256 of a 40 x 48 crop of samples/astronaut.png (rows 200-239, columns 240-287) compressed with each
# other shipped model (default tile and chunk), without sharpness (format version 2). Change one only on
# purpose (a new model of that name).
GOLDEN_CROP = {
    "rowlstm": "74a2e02268d955bbd7677de855ece35f0c217bf4816329a725abe44e795da802",
    "diagbilstm": "2b54b0a1da20439b602db3f8797bad733d2f1e905a885c286ef291e3b4f7546c",
    "multiscale": "7c3008fd31659690436ddaef08015ac147b9e1e5096451fb8ab573a9f91a0ca0",
    "multiscale-rowlstm": "6658a8471459181daf3df5db64c500884ccc4f60f6967eaf34c88df5543de51e",
}

# The same crop with each shipped model as written (format version 7: sharpness and the adaptive stage), and
# with the stages of versions 6, 5 and 4.
GOLDEN_CROP_V7 = {
    "diagbilstm": "b10cf5d37c6e2d454429b70554c844e71317c5e542f44aba4f233ed4a3ab29e6",
    "multiscale": "85c2f4b88307a079e518f9a124384db2bd2917a3a4ea90ab4a281337e75e9e0d",
    "multiscale-rowlstm": "c84ef5e17b8accd6747bb170d23c789009bc0039c198c5f57e358f32e208e356",
    "rowlstm": "4404394a5aa1545091d3909ac47fbad42367c2c73b999051cf1e8babaec231ac",
    "pixelcnn": "c0467ab8e34e6324c63849cf2408d6102e1894d36dd0d5c78ea2b090a7fbf3f1",
}
GOLDEN_CROP_V6 = {
    "diagbilstm": "c543cf33d2dc0e76121e67bce30a5163a0069954d0e7523b2c11b93cc70f73f9",
    "multiscale": "565720482caa2882e2a8d77f014d07745044021a1415afce24d48e45017f600f",
    "multiscale-rowlstm": "a4b65acf110b9a6119cc30b0d26ff7d7d4847091b9840a9c2da0f24dcb536f69",
    "rowlstm": "757363e63a4d80a0eaa1136a63266e628ce0fe4200b32795a517044425efc209",
    "pixelcnn": "55037fc6b4cdda9d4715f4c89c0540f32caef82920b6f8bbcd0421ad81a91510",
}
GOLDEN_CROP_V5 = {
    "diagbilstm": "94fe171307f7bdfa5151db99a66411d39de230e6c3eb033d8d583a8299f7128a",
    "multiscale": "3dc1269706a484020dd66d24520bdf2ba27074074993a9a00cb41f22b0ba0abb",
    "multiscale-rowlstm": "7422fc45e1706c1e6ee722a364e5060fb0210a90fc90671972f369ee609aeb66",
    "rowlstm": "79e0bf3768278056bc3d1e876427c292b60140eebf5206e3898dfebbc83b5d71",
    "pixelcnn": "8064782c42f0f09662051226385a5e35d13e74de1a07c9ccfde47c408fcb89f3",
}
GOLDEN_CROP_V4 = {
    "diagbilstm": "fd607717c272e9945a1d6d08dc820e299ee196a39f12f79e1e39938ab2e2c739",
    "multiscale": "08dfa20e63248131a82bc8842d761554b6f23e836897812ac20120594ea7e099",
    "multiscale-rowlstm": "d1c94637fa9f66ed261639079658e6e6e89d2a80c2804f902bc907fa6a475862",
    "rowlstm": "3457e99412b1a3c765d8da0014b84779590d2c540c90458f3a369ab46ac5de67",
    "pixelcnn": "a75e12089e69c59795bbadb1029d40cbdf0ac7f77fecd306dcd60f23c0254a42",
}

# Models replaced by a better one of the same name, still shipped (not in the manifest) so that their files
# decode: file -> the SHA-256 of the crop's file without sharpness (format version 2), pinned when it was
# replaced (the network's integers do not change with the format).
RETIRED_CROP = {
    "diagbilstm-017512a7.npz": "aa257e7756e0b5be5de479971be0f92309a75c9299350e4c6840c78aea20fc37",
    "pixelcnn-51901d66.npz": "d70df3219e1bc1804dc2440958bb9130024c8f9c6492fdda800683ce41897a73",
    "pixelcnn-1b22c9ec.npz": "b091824144ef5245adad768c6ead482f7dee7ba332ba532eaf8f0d12243bc510",
    "pixelcnn-96d2cbc4.npz": "cd05b95934a9cc46b167c5656ac8fd13839767818aff9723ab587957b3abd11a",
    "pixelcnn-3cab8674.npz": "fdb34bcb657d08f479dbfb1f14ee271e7e532493147c607b1a24056025c08b97",
    "pixelcnn-f20b173f.npz": "4ff75be228e5f96cf73a44590161ff12822cf40dd204abc40199bd6ef1ba7830",
}
# A replaced default's files as it wrote them last (format version 7, the adaptive stage): file -> the
# SHA-256 of the crop's file, pinned while it was the default.
RETIRED_CROP_V7 = {
    "pixelcnn-f20b173f.npz": "59dd5057c2389709bd90a96288c590977a1abe467e827c4bd1e8fd5e2424bb1c",
}


def sample_crop() -> np.ndarray:
    return np.ascontiguousarray(load_pixels(SAMPLE)[0][200:240, 240:288])


@pytest.mark.parametrize("name", sorted(GOLDEN_CROP))
def test_every_shipped_architecture_round_trips_with_golden_bytes(name):
    """Each shipped model of the other architectures: its bytes are pinned, and they decode, found by name
    and hash; so do its files with sharpness."""
    pixels = sample_crop()
    data, report = codec.compress_pixels(pixels, "RGB", registry.resolve(name), sharpen=False)
    assert hashlib.sha256(data).hexdigest() == GOLDEN_CROP[name], f"model {name}'s output changed"
    sharpened, sharpened_report = codec.compress_pixels(pixels, "RGB", registry.resolve(name))
    for file in (data, sharpened):
        out, mode = codec.decompress_pixels(file)
        np.testing.assert_array_equal(out, pixels)
    assert report.bpsp < 8  # a trained model, not noise
    assert sharpened_report.ideal_bits < report.ideal_bits


@pytest.mark.parametrize("name", sorted(GOLDEN_CROP_V7))
def test_every_shipped_architecture_adaptive_golden_bytes(name):
    """Format versions 7, 6, 5 and 4 with each shipped model: pinned bytes, decoded exactly."""
    pixels = sample_crop()
    for version, golden in ((7, GOLDEN_CROP_V7), (6, GOLDEN_CROP_V6), (5, GOLDEN_CROP_V5), (4, GOLDEN_CROP_V4)):
        data = codec.compress_pixels(pixels, "RGB", registry.resolve(name), stage=version)[0]
        assert container.unpack(data)[0].version == version
        assert hashlib.sha256(data).hexdigest() == golden[name], f"model {name}'s version {version} output changed"
        np.testing.assert_array_equal(codec.decompress_pixels(data)[0], pixels)


@pytest.mark.parametrize("file", sorted(RETIRED_CROP))
def test_retired_models_still_decode_with_golden_bytes(file):
    """A replaced model's files: the bytes it always made, decoded with the model found by name and hash
    though the manifest now lists a newer model of that name."""
    retired = registry.load_file(REPO / "models" / file)
    assert retired.sha256 != registry.resolve(retired.name).sha256
    pixels = sample_crop()
    data = codec.compress_pixels(pixels, "RGB", retired, sharpen=False)[0]
    assert hashlib.sha256(data).hexdigest() == RETIRED_CROP[file]
    np.testing.assert_array_equal(codec.decompress_pixels(data)[0], pixels)


@pytest.mark.parametrize("file", sorted(RETIRED_CROP_V7))
def test_retired_default_adaptive_files_still_decode(file):
    """The files a replaced default wrote in the current format: the same bytes, decoded with the model found
    by name and hash."""
    retired = registry.load_file(REPO / "models" / file)
    assert retired.sha256 != registry.resolve(retired.name).sha256
    pixels = sample_crop()
    data = codec.compress_pixels(pixels, "RGB", retired)[0]
    assert container.unpack(data)[0].version == 7
    assert hashlib.sha256(data).hexdigest() == RETIRED_CROP_V7[file]
    np.testing.assert_array_equal(codec.decompress_pixels(data)[0], pixels)


@pytest.fixture(scope="module")
def default_model():
    return registry.resolve(None)


@pytest.fixture(scope="module")
def sample_file(default_model):
    pixels, mode = load_pixels(SAMPLE)
    return pixels, *codec.compress_pixels(pixels, mode, default_model)


def test_manifest_matches_files():
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    assert manifest["default"] in {e["name"] for e in manifest["models"]}
    for entry in manifest["models"]:
        path = REPO / "models" / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert entry["file"] == f"{entry['name']}-{entry['sha256'][:8]}.npz"
        config = registry.load_file(path).config  # settings added later take their defaults in both
        assert config == type(config).from_dict(entry["config"])


def test_real_photo_roundtrip(sample_file, default_model):
    pixels, data, report = sample_file
    out, mode = codec.decompress_pixels(data)  # finds the model by name and hash
    assert mode == "RGB"
    np.testing.assert_array_equal(out, pixels)


def test_payload_within_half_a_percent_of_ideal(sample_file):
    pixels, data, report = sample_file
    _, [payload] = container.unpack(data)
    assert 8 * len(payload) <= 1.005 * report.ideal_bits
    assert report.bpsp < 8 * (REPO / "samples" / "astronaut.png").stat().st_size / pixels.size  # beats PNG


def test_golden_bytes(sample_file, default_model):
    digest = hashlib.sha256(sample_file[1]).hexdigest()
    assert digest == GOLDEN_V7, f"the default model's output changed: {digest}"
    pixels, mode = load_pixels(SAMPLE)
    v6 = codec.compress_pixels(pixels, mode, default_model, stage=6)[0]
    assert hashlib.sha256(v6).hexdigest() == GOLDEN_V6, "the default model's version 6 output changed"
    v5 = codec.compress_pixels(pixels, mode, default_model, stage=5)[0]
    assert hashlib.sha256(v5).hexdigest() == GOLDEN_V5, "the default model's version 5 output changed"
    v4 = codec.compress_pixels(pixels, mode, default_model, stage=4)[0]
    assert hashlib.sha256(v4).hexdigest() == GOLDEN_V4, "the default model's version 4 output changed"
    assert len(sample_file[1]) < len(v6) < len(v5) < len(v4)
    v3 = codec.compress_pixels(pixels, mode, default_model, adapt=False)[0]
    assert hashlib.sha256(v3).hexdigest() == GOLDEN, "the default model's version 3 output changed"
    assert len(sample_file[1]) < len(v3)
    digest = hashlib.sha256(codec.compress_pixels(pixels, mode, default_model, sharpen=False)[0]).hexdigest()
    assert digest == GOLDEN_V2, f"the default model's integers changed: {digest}"


def test_previous_default_still_decodes_with_golden_bytes():
    """Files made with the first release's default model: the same bytes as always, and they decode (the model
    found by name and hash though the manifest no longer lists it)."""
    previous = registry.load_file(FIRST_DEFAULT)
    assert previous.name == "pixelcnn" and previous.sha256 != registry.resolve(None).sha256
    pixels, mode = load_pixels(SAMPLE)
    data = codec.compress_pixels(pixels, mode, previous, sharpen=False)[0]
    assert hashlib.sha256(data).hexdigest() == GOLDEN_PREVIOUS
    np.testing.assert_array_equal(codec.decompress_pixels(data)[0], pixels)
    data = codec.compress_pixels(pixels, mode, previous, tile=64, chunk=256, sharpen=False)[0]
    assert hashlib.sha256(version1(data)).hexdigest() == GOLDEN_TILE64


@pytest.mark.parametrize("entry", json.loads((REPO / "models" / "manifest.json").read_text())["models"],
                         ids=lambda e: e["name"])
def test_recipe_config_is_the_shipped_models(entry):
    """train/NAME.toml, the recipe's config, holds exactly the shipped model NAME's settings."""
    import tomllib

    from pixzip.train import TrainConfig

    recipe = tomllib.loads((REPO / "train" / f"{entry['name']}.toml").read_text())
    config = registry.ARCHITECTURES[entry["arch"]].config
    assert recipe["arch"] == entry["arch"]
    assert config.from_dict(recipe["model"]) == config.from_dict(entry["config"])
    # How often a run validates and checkpoints changes nothing it learns (the recipe may --set them).
    bookkeeping = {"val_minutes", "checkpoint_minutes"}
    shipped = {k: v for k, v in {**TrainConfig().__dict__, **entry["training"]["train"]}.items()
               if k not in bookkeeping}
    assert {k: v for k, v in TrainConfig.from_dict(recipe["train"]).__dict__.items() if k not in bookkeeping} == shipped


def test_dequantized_default_exports_to_the_same_integers():
    """train/dequantize.py's float model of the shipped default quantizes back to every integer of its file,
    so that training can go on from a shipped model (its float checkpoints are not shipped)."""
    import importlib.util

    from pixzip import intnet

    spec = importlib.util.spec_from_file_location("dequantize", REPO / "train" / "dequantize.py")
    dequantize = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dequantize)
    default = registry.resolve(None)
    arrays = intnet.export_arrays(dequantize.dequantize(default.network.arrays, default.config, default.config))
    assert arrays.keys() == default.network.arrays.keys()
    for name, values in default.network.arrays.items():
        np.testing.assert_array_equal(arrays[name], values, err_msg=name)
