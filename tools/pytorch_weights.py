#!/usr/bin/env python3
"""PyTorch MSDNet / IMTA weights in and out of disttrain checkpoints, by state_dict key.

disttrain names every tensor with the reference's state_dict key (DESIGN.md), so converting is
copying tensors by name; what a disttrain checkpoint adds is its metadata (the run's resolved
configuration, seed and validation hold-out), which the conversion takes from any checkpoint of
the same run file (--like), e.g. the one `disttrain train RUN.json --stop-after-steps 1` writes.

  to-disttrain MODEL.pth OUT.h5 --like CHECKPOINT.h5
      A state_dict (or a dict holding one under 'state_dict', as the authors release them; a
      DataParallel 'module.' prefix is dropped). Keys under 'net.' (IMTA_MSDNet) make a phase-II
      checkpoint, others a phase-I one. Momentum buffers are zero. Then:
      disttrain eval RUN.json --checkpoint OUT.h5
  to-pytorch CHECKPOINT.h5 OUT.pth
      The /model tensors as a state_dict that the reference's load_state_dict takes.
  check --reference IMTA_DIR --disttrain BIN [--work DIR]
      The round trip on random weights: the reference's MSDNet-GE (phase I) and IMTA_MSDNet
      (phase II) with random weights and BatchNorm statistics, a tiny Fashion-MNIST run file,
      .pth -> disttrain checkpoint -> `disttrain eval --checkpoint` -> logits.h5 compared with
      the reference's eval-mode softmax on the same 64 test images, and the checkpoint converted
      back to .pth compared with the original, tensor by tensor.

Needs torch and h5py; the reference is imported from IMTA_DIR (a checkout of kalviny/IMTA).
"""
import argparse
import contextlib
import gzip
import io
import json
import math
import os
import subprocess
import sys
import tempfile

import h5py
import numpy

BUFFER_SUFFIXES = ('running_mean', 'running_var', 'num_batches_tracked')


def load_state_dict(path):
    import torch
    loaded = torch.load(path, map_location='cpu')
    if isinstance(loaded, dict) and 'state_dict' in loaded:
        loaded = loaded['state_dict']
    return {(key[len('module.'):] if key.startswith('module.') else key): value for key, value in loaded.items()}


def to_disttrain(pth, output, like):
    state = load_state_dict(pth)
    phase = 2 if any(key.startswith('net.') for key in state) else 1
    with h5py.File(like, 'r') as template:
        if template.attrs['format'] != 'disttrain-checkpoint':
            sys.exit(f'{like}: not a disttrain checkpoint (attribute format is {template.attrs["format"]!r})')
        configuration = template.attrs['config']
        seed = template.attrs['seed']
        validation = template['data/validationIndices'][()]
    epochs = json.loads(configuration)[f'phase{phase}']['epochs']
    partial = output + '.partial'
    with h5py.File(partial, 'w') as file:
        file.attrs['format'] = 'disttrain-checkpoint'
        file.attrs['version'] = numpy.int64(1)
        file.attrs['config'] = configuration
        file.attrs['phase'] = numpy.int64(phase)
        file.attrs['epoch'] = numpy.int64(epochs)
        file.attrs['step'] = numpy.int64(0)
        file.attrs['worldSize'] = numpy.int64(1)
        file.attrs['seed'] = seed
        for key, tensor in state.items():
            values = tensor.detach().cpu().numpy()
            values = values.astype(numpy.int64 if key.endswith('num_batches_tracked') else numpy.float32)
            checksum = values.ndim > 0 and values.size > 0
            file.create_dataset(f'model/{key}', data=values, fletcher32=checksum)
            trained = not key.endswith(BUFFER_SUFFIXES) and not (phase == 2 and key.startswith('net.'))
            if trained:
                file.create_dataset(f'optimizer/momentum/{key}', data=numpy.zeros_like(values), fletcher32=checksum)
        file.create_dataset('data/validationIndices', data=validation)
    os.replace(partial, output)
    return phase


def to_pytorch(checkpoint, output):
    import torch
    with h5py.File(checkpoint, 'r') as file:
        state = {}
        file['model'].visititems(lambda name, item: state.__setitem__(name, torch.from_numpy(numpy.array(item[()])))
                                 if isinstance(item, h5py.Dataset) else None)
    torch.save(state, output)


def check(reference, disttrain, work):
    import torch
    import torch.nn as nn
    sys.path.insert(0, reference)
    import models  # noqa: F401  (the reference's package)
    gradient_equilibrium = sys.modules['models.msdnet_ge']
    imta = sys.modules['models.msdnet_imta']
    torch.manual_seed(0)
    fashion_mnist = '/usr/share/datasets/fashion-mnist'
    run_directory = os.path.join(work, 'run')
    model = {'stem': 'cifar', 'inputSize': 32, 'nBlocks': 3, 'stepmode': 'lin_grow', 'step': 1, 'base': 1,
             'nChannels': 16, 'growthRate': 6, 'grFactor': [1, 2, 4], 'bnFactor': [1, 2, 4]}
    phase = {'epochs': 1, 'batchSize': 32, 'lr': 0.1}
    run_file = os.path.join(work, 'run.json')
    with open(run_file, 'w') as file:
        json.dump({'name': 'pytorch-round-trip', 'runDir': run_directory, 'threadsPerRank': 1,
                   'data': {'dataset': 'fashion-mnist', 'root': fashion_mnist, 'validationHoldout': 64,
                            'limitTrain': 128, 'limitTest': 64},
                   'model': model, 'phase1': phase, 'phase2': phase,
                   'evaluation': {'budgets': 4, 'batchSize': 64}}, file)
    subprocess.run([disttrain, 'train', run_file, '--fresh', '--stop-after-steps', '1'], check=True,
                   stdout=subprocess.DEVNULL)
    checkpoints = os.path.join(run_directory, 'checkpoints')
    template = os.path.join(checkpoints, sorted(os.listdir(checkpoints))[0])

    class Arguments:
        pass
    arguments = Arguments()
    arguments.data, arguments.num_classes = 'cifar10', 10
    arguments.nBlocks, arguments.stepmode, arguments.step, arguments.base = 3, 'lin_grow', 1, 1
    arguments.nChannels, arguments.growthRate = 16, 6
    arguments.grFactor, arguments.bnFactor, arguments.nScales = [1, 2, 4], [1, 2, 4], 3
    arguments.prune, arguments.reduction, arguments.bottleneck, arguments.pretrained = 'max', 0.5, True, None

    def single_channel_stem(network):
        # The reference's first convolution takes 3 channels; Fashion-MNIST has 1.
        first = network.blocks[0][0].layers[0].net[0]
        network.blocks[0][0].layers[0].net[0] = nn.Conv2d(1, first.out_channels, 3, 1, 1, bias=False)
        return network

    # The first 64 test images as disttrain's evaluation feeds them: 28x28 centred on a 32x32
    # canvas of zero pixels, then (x / 255 - 0.2860) / 0.3530.
    with gzip.open(f'{fashion_mnist}/t10k-images-idx3-ubyte.gz') as file:
        pixels = numpy.frombuffer(file.read(), dtype=numpy.uint8, offset=16)[:64 * 784].reshape(64, 28, 28)
    canvas = numpy.zeros((64, 1, 32, 32), dtype=numpy.float32)
    canvas[:, 0, 2:30, 2:30] = pixels
    images = torch.from_numpy((canvas / numpy.float32(255) - numpy.float32(0.2860)) / numpy.float32(0.3530))

    failures = 0
    for phase_number in (1, 2):
        with contextlib.redirect_stdout(io.StringIO()):  # the reference prints its build log
            if phase_number == 1:
                network = single_channel_stem(gradient_equilibrium.msdnet_ge(arguments))
            else:
                network = imta.IMTA_MSDNet(arguments)
                single_channel_stem(network.net)
        with torch.no_grad():
            for name, parameter in network.named_parameters():
                if parameter.dim() == 1 and name.endswith('weight'):
                    parameter.uniform_(0.5, 1.5)  # BatchNorm scales
                elif parameter.dim() == 1:
                    parameter.normal_(0, 0.1)
                elif parameter.dim() == 2:
                    parameter.mul_(4)  # confident exits
            # Running statistics of these images (momentum 1 keeps the last batch's): features
            # then vary between images as in a trained network, so do the predictions.
            for module in network.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.momentum = 1.0
            network.train()
            network(images)
        network.eval()
        with torch.no_grad():
            outputs = network(images)
        logits = outputs[0] if phase_number == 1 else outputs
        expected = numpy.stack([torch.softmax(exit_logits, dim=1).numpy() for exit_logits in logits])

        pth = os.path.join(work, f'phase{phase_number}.pth')
        torch.save({'state_dict': network.state_dict(), 'epoch': 0}, pth)
        converted = os.path.join(work, f'phase{phase_number}.h5')
        to_disttrain(pth, converted, template)
        evaluation = subprocess.run([disttrain, 'eval', run_file, '--checkpoint', converted], capture_output=True, text=True)
        if evaluation.returncode != 0:
            print(f'phase {phase_number}: disttrain eval failed: {evaluation.stderr.strip()}')
            failures += 1
            continue
        with h5py.File(os.path.join(run_directory, 'logits.h5'), 'r') as file:
            probabilities = file['test/probs'][()]
        difference = float(numpy.abs(probabilities - expected).max())
        agree = int((probabilities.argmax(axis=2) == expected.argmax(axis=2)).sum())

        back = os.path.join(work, f'phase{phase_number}-back.pth')
        to_pytorch(converted, back)
        original, returned = network.state_dict(), torch.load(back)
        identical = set(original) == set(returned) and all(
            torch.equal(original[key].to(returned[key].dtype), returned[key]) for key in original)
        spread = len(set(expected[-1].argmax(axis=1).tolist()))
        passed = difference < 1e-4 and identical and spread >= 3
        failures += 0 if passed else 1
        print(f'phase {phase_number} ({"MSDNet-GE" if phase_number == 1 else "IMTA_MSDNet"}, {len(original)} tensors): '
              f'max |p_disttrain - p_pytorch| over {expected.shape[0]} exits x {expected.shape[1]} images x {expected.shape[2]} '
              f'classes = {difference:.2e} (tolerance 1e-4; the last exit predicts {spread} different classes, must be >= 3), same top-1 {agree}/{expected.shape[0] * expected.shape[1]}, '
              f'state_dict back from disttrain {"identical" if identical else "DIFFERENT"}: {"pass" if passed else "FAIL"}')
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    into = commands.add_parser('to-disttrain')
    into.add_argument('pth')
    into.add_argument('output')
    into.add_argument('--like', required=True, help='a disttrain checkpoint of the same run file')
    out = commands.add_parser('to-pytorch')
    out.add_argument('checkpoint')
    out.add_argument('output')
    round_trip = commands.add_parser('check')
    round_trip.add_argument('--reference', required=True, help='a checkout of github.com/kalviny/IMTA')
    round_trip.add_argument('--disttrain', default='.build/release/disttrain')
    round_trip.add_argument('--work', help='scratch directory (default: a temporary one)')
    options = parser.parse_args()
    if options.command == 'to-disttrain':
        phase = to_disttrain(options.pth, options.output, options.like)
        print(f'wrote {options.output} (phase {phase})')
    elif options.command == 'to-pytorch':
        to_pytorch(options.checkpoint, options.output)
        print(f'wrote {options.output}')
    else:
        if options.work:
            os.makedirs(options.work, exist_ok=True)
            sys.exit(1 if check(options.reference, os.path.abspath(options.disttrain), options.work) else 0)
        with tempfile.TemporaryDirectory() as work:
            sys.exit(1 if check(options.reference, os.path.abspath(options.disttrain), work) else 0)


if __name__ == '__main__':
    main()
