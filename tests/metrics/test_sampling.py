"""CodeCache and the replay of disentanglement_lib's factor draws."""

import dlib_reference_sampled as ref
import numpy as np
import pytest
import torch
from sampled_toys import linear_represent, pixel_dataset

from untwine.errors import UntwineError
from untwine.metrics.sampling import CodeCache, generate_batch_factor_code


def test_generate_batch_factor_code_equals_reference_with_fewer_encodings():
    ds = pixel_dataset()
    represent = linear_represent(4, 6)
    cache = CodeCache(ds, represent, batch_size=7)
    codes, factors = generate_batch_factor_code(ds, cache, 1000, np.random.RandomState(3), 16)
    ref_codes, ref_factors = ref.generate_batch_factor_code(
        ref.ReferenceData(ds), represent, 1000, np.random.RandomState(3), 16
    )
    np.testing.assert_array_equal(codes, ref_codes.T)
    np.testing.assert_array_equal(factors, ref_factors.T)
    assert cache.num_requested == 1000
    assert cache.num_encoded == len(np.unique(cache.index(factors))) <= len(ds)


def test_cache_encodes_each_index_once_across_calls():
    ds = pixel_dataset()
    cache = CodeCache(ds, linear_represent(4, 3), batch_size=5)
    first = cache.codes(np.array([7, 3, 7, 100]))
    again = cache.codes(np.array([[100, 3], [8, 7]]))
    assert cache.num_encoded == 4
    assert cache.num_requested == 8
    np.testing.assert_array_equal(again[0], first[[3, 1]])
    np.testing.assert_array_equal(again[1, 1], first[0])


def test_uncached_codes_encode_every_request_so_random_codes_stay_random():
    ds = pixel_dataset()
    draws = np.random.RandomState(0)
    cache = CodeCache(ds, lambda x: draws.randn(len(x), 2), batch_size=3, cache=False)
    codes = cache.codes(np.array([[7, 7], [3, 7]]))
    assert codes.shape == (2, 2, 2)
    assert cache.num_encoded == cache.num_requested == 4
    assert not np.array_equal(codes[0, 0], codes[0, 1])


def test_datasets_with_random_images_are_not_cached_by_default():
    ds = pixel_dataset()
    assert CodeCache(ds, linear_represent(4, 3)).cache
    ds.info["random_images"] = True
    cache = CodeCache(ds, linear_represent(4, 3))
    cache.codes(np.array([5, 5]))
    assert not cache.cache and cache.num_encoded == 2


def test_cache_accepts_torch_represent_and_keeps_its_dtype():
    ds = pixel_dataset()
    layer = torch.nn.Linear(4, 2)
    cache = CodeCache(ds, lambda x: layer(x.reshape(len(x), -1)))
    codes = cache.codes_of(np.array([[0, 1, 2, 3], [2, 3, 4, 5]]))
    assert codes.dtype == np.float32 and codes.shape == (2, 2)


def test_cache_rejects_nan_codes():
    ds = pixel_dataset()
    cache = CodeCache(ds, lambda x: np.full((len(x), 2), np.nan))
    with pytest.raises(UntwineError, match="NaN"):
        cache.codes(np.arange(3))


def test_cache_rejects_wrong_number_of_codes():
    ds = pixel_dataset()
    cache = CodeCache(ds, lambda x: np.zeros((1, 2)))
    with pytest.raises(UntwineError, match="2 images"):
        cache.codes(np.arange(2))
