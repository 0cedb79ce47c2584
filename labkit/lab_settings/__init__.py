"""Each built-in lab's settings, one module per lab, with the course's values and the offline profile's beside them.

* :mod:`.declare`: how a lab declares its settings (named sections, each with every profile's value), and an
  external lab's ``settings:`` YAML turned into the same;
* :mod:`.lora`: the shape of a LoRA adapter, which lab 2 trains and lab 3 starts from;
* :mod:`.prompting` (lab 1), :mod:`.fine_tuning` (lab 2), :mod:`.detox` (lab 3: PPO, DPO and its summarizer).

:mod:`labkit.labs` ties each lab id to its module; :func:`labkit.profiles.get_profile` puts every registered lab's
sections into a profile (``profile.ppo``).
"""
