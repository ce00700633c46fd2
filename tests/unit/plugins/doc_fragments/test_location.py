# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The location doc fragment: its variants are built from one block of suboptions, which says what LOCATION_SPEC says."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.mnaas.backup.plugins.doc_fragments.location import ModuleDocFragment
from ansible_collections.mnaas.backup.plugins.module_utils._locations.factory import LOCATION_SPEC


@pytest.mark.parametrize('variant, options', [('DOCUMENTATION', ['src_location', 'dest_location']), ('FILE', ['location']),
                                              ('PRIMARY_LOCATION', ['primary_location'])])
def test_each_variant_documents_the_location_spec(variant, options):
    doc = yaml.safe_load(getattr(ModuleDocFragment, variant))
    assert list(doc) == ['options'] and list(doc['options']) == options
    for name in options:
        option = doc['options'][name]
        assert option['type'] == 'dict'
        assert ('description' in option) is (variant != 'PRIMARY_LOCATION'), 'preflight describes primary_location itself'
        suboptions = option['suboptions']
        assert list(suboptions) == list(LOCATION_SPEC)
        for key, spec in LOCATION_SPEC.items():
            documented = suboptions[key]
            assert documented['type'] == spec['type'], key
            assert documented.get('default') == spec.get('default'), key
            assert documented.get('choices') == spec.get('choices'), key
            assert documented.get('elements') == spec.get('elements'), key
            assert documented['description'], key


def test_the_variants_share_one_source():
    docs = [yaml.safe_load(getattr(ModuleDocFragment, variant))['options'] for variant in ('DOCUMENTATION', 'FILE', 'PRIMARY_LOCATION')]
    suboptions = [option['suboptions'] for doc in docs for option in doc.values()]
    assert all(one == suboptions[0] for one in suboptions)
