"""skae.plotting: every figure is produced headless (Agg) with the expected panels."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from skae import VAE, AAEClassifier, AutoEncoder, AutoEncoderClassifier  # noqa: E402
from skae.datasets import make_semi_supervised  # noqa: E402
from skae.plotting import (  # noqa: E402
    plot_codes,
    plot_reconstructions,
    plot_samples,
    plot_training_curves,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16.0).astype(np.float32)
    return X, y[:300], make_semi_supervised(y[:300], n_labeled=50, random_state=0)


@pytest.fixture(scope="module")
def ae(digits):
    return AutoEncoder(n_components=3, hidden_layer_sizes=(16,), max_epochs=2,
                       random_state=0).fit(digits[0])


@pytest.fixture(scope="module")
def vae(digits):
    return VAE(n_components=2, hidden_layer_sizes=(16,), max_epochs=2,
               random_state=0).fit(digits[0])


@pytest.fixture(scope="module")
def aae(digits):
    X, _, y_semi = digits
    return AAEClassifier(n_components=2, hidden_layer_sizes=(16,),
                         discriminator_hidden_sizes=(8,), max_epochs=2,
                         random_state=0).fit(X, y_semi)


def _images(fig):
    return sum(len(ax.get_images()) for ax in fig.axes)


# --- reconstructions --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ae", "vae", "aae"])
def test_reconstructions_two_rows_of_images(request, digits, name):
    est = request.getfixturevalue(name)
    fig = plot_reconstructions(est, digits[0], n_samples=7)
    assert len(fig.axes) == 14
    assert _images(fig) == 14
    assert fig.axes[0].get_images()[0].get_array().shape == (8, 8)  # 64 features: 8x8 images
    assert fig.axes[0].get_ylabel() == "input"
    assert fig.axes[7].get_ylabel() == "reconstruction"


def test_reconstructions_of_pca_for_comparison(digits):
    fig = plot_reconstructions(PCA(n_components=5).fit(digits[0]), digits[0], n_samples=4)
    assert len(fig.axes) == 8


def test_reconstructions_of_images_use_the_fitted_shape():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(40, 6, 10)).astype(np.float32)
    ae = AutoEncoder(n_components=2, backbone="mlp", hidden_layer_sizes=(8,), max_epochs=1,
                     random_state=0).fit(X)
    fig = plot_reconstructions(ae, X, n_samples=3)
    assert fig.axes[0].get_images()[0].get_array().shape == (6, 10)


def test_reconstructions_of_tables_are_line_profiles():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 7)).astype(np.float32)
    ae = AutoEncoder(n_components=2, hidden_layer_sizes=(8,), max_epochs=1,
                     random_state=0).fit(X)
    fig = plot_reconstructions(ae, X, n_samples=3)
    assert len(fig.axes) == 6
    assert _images(fig) == 0
    assert all(len(ax.get_lines()) == 1 for ax in fig.axes)


def test_explicit_image_shape_is_checked(ae, digits):
    fig = plot_reconstructions(ae, digits[0], n_samples=2, image_shape=(4, 16))
    assert fig.axes[0].get_images()[0].get_array().shape == (4, 16)
    with pytest.raises(ValueError, match="image_shape"):
        plot_reconstructions(ae, digits[0], image_shape=(5, 5))


def test_reconstructions_need_an_inverse_transform(digits):
    X, _, y_semi = digits
    clf = AutoEncoderClassifier(n_components=2, hidden_layer_sizes=(8,), pretrain_epochs=1,
                                max_epochs=1, random_state=0).fit(X, y_semi)
    with pytest.raises(TypeError, match="inverse_transform"):
        plot_reconstructions(clf, X)


# --- samples ----------------------------------------------------------------------------------
def test_vae_samples_grid(vae):
    fig = plot_samples(vae, n_samples=10, random_state=0)
    assert len(fig.axes) == 10  # a 4x3 grid, its two empty cells removed
    assert _images(fig) == 10
    fig = plot_samples(vae, n_samples=6, n_cols=6, random_state=0)
    assert len(fig.axes) == 6


def test_aae_samples_share_a_style_per_row(aae):
    fig = plot_samples(aae, n_styles=3, random_state=0)
    n_classes = len(aae.classes_)
    assert len(fig.axes) == 3 * n_classes
    assert [ax.get_title() for ax in fig.axes[:n_classes]] == [str(c) for c in aae.classes_]
    assert fig.axes[n_classes].get_ylabel() == "style 2"
    # each row is aae.sample(classes, style=one style): the same images, in the same order
    style = np.random.RandomState(0).standard_normal((3, aae.n_components))[1]
    expected, _ = aae.sample(n_classes, y=aae.classes_, style=style)
    for j in range(n_classes):
        shown = fig.axes[n_classes + j].get_images()[0].get_array()
        np.testing.assert_allclose(shown, expected[j].reshape(8, 8), rtol=1e-6)


def test_samples_are_seeded(vae):
    a = plot_samples(vae, n_samples=4, random_state=1).axes[0].get_images()[0].get_array()
    b = plot_samples(vae, n_samples=4, random_state=1).axes[0].get_images()[0].get_array()
    np.testing.assert_array_equal(a, b)


def test_samples_need_a_sample_method(ae):
    with pytest.raises(TypeError, match="sample"):
        plot_samples(ae)


# --- codes ------------------------------------------------------------------------------------
def test_codes_projected_to_2d_and_coloured(ae, digits):
    X, y, _ = digits
    fig = plot_codes(ae, X, y)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xlabel() == "code PC 1"  # 3-D codes: projected on 2 principal components
    assert len(ax.collections) == len(np.unique(y))
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == sorted(
        str(v) for v in np.unique(y))


def test_codes_with_unlabeled_rows(vae, digits):
    X, _, y_semi = digits
    fig = plot_codes(vae, X, y_semi)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "code 1"  # 2-D codes drawn as they are
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "unlabeled"
    assert len(ax.collections) == 1 + len(np.unique(y_semi[y_semi != -1]))
    n_points = sum(len(c.get_offsets()) for c in ax.collections)
    assert n_points == len(X)


def test_codes_of_the_aae_are_its_style_and_can_be_subsampled(aae, digits):
    X, y, _ = digits
    fig = plot_codes(aae, X, max_points=50)
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 50


def test_codes_without_labels_and_many_labels(ae, digits):
    X = digits[0]
    assert len(plot_codes(ae, X).axes[0].collections) == 1
    fig = plot_codes(ae, X, np.arange(len(X)))  # a continuous target: one coloured scatter
    assert len(fig.axes[0].collections) == 1


# --- training curves --------------------------------------------------------------------------
def test_training_curves_one_panel_per_loss(aae):
    fig = plot_training_curves(aae)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["reconstruction (recon_loss)", "discriminator (disc_loss)",
                      "generator (gen_loss)", "supervised (sup_loss)"]
    for ax in fig.axes:
        (line,) = ax.get_lines()
        assert list(line.get_xdata()) == [1, 2]
        assert np.all(np.isfinite(line.get_ydata()))


def test_training_curves_of_the_vae(vae):
    fig = plot_training_curves(vae, log_scale=True)
    assert [ax.get_title() for ax in fig.axes] == ["negative ELBO (elbo_loss)"]
    assert fig.axes[0].get_yscale() == "log"


def test_training_curves_of_stages(digits):
    X, _, y_semi = digits
    clf = AutoEncoderClassifier(n_components=2, hidden_layer_sizes=(8,), pretrain_epochs=2,
                                max_epochs=3, random_state=0).fit(X, y_semi)
    fig = plot_training_curves(clf)
    recon, sup = fig.axes
    assert list(recon.get_lines()[0].get_xdata()) == [1, 2]
    assert list(sup.get_lines()[0].get_xdata()) == [3, 4, 5]


def test_training_curves_selected_losses_and_errors(aae):
    fig = plot_training_curves(aae, losses=["train_loss", "sup_loss"])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="not in the history"):
        plot_training_curves(aae, losses=["nope_loss"])
    with pytest.raises(TypeError, match="net_"):
        plot_training_curves(PCA())


def test_training_curves_of_a_skorch_net(ae):
    fig = plot_training_curves(ae.net_)
    assert len(fig.axes) == 1


def test_figures_save_as_png(ae, digits, tmp_path):
    fig = plot_reconstructions(ae, digits[0], n_samples=3)
    fig.savefig(tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
