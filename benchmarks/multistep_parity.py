#!/usr/bin/env python3
"""Multi-step parity with the authors' code on real Fashion-MNIST: 50 phase-I steps, then 20
phase-II steps, on fixed batches (no augmentation, file order), in the reference and in disttrain.

The reference (kalviny/IMTA) is imported, unmodified, from a checkout given with --reference;
nothing of it is in this repository. It is the network of cluster/fashion-mnist.json (5 blocks,
lin_grow, nChannels 16, growthRate 6, bottleneck, prune max, reduction 0.5, one-channel stem as in
pytorch_reference.py), started from the reference's own initialisation (rounded to float32):

  phase I:  MSDNet with GE, loss = sum of the exits' cross-entropies, SGD lr 0.1 momentum 0.9
            Nesterov weight decay 1e-4 over every parameter; the reference's multistep schedule
            over 5 "epochs" of 10 steps (x0.1 from step 30, x0.01 from step 40);
  phase II: IMTA heads + ISC on the frozen backbone (BatchNorm in training mode, as main_IMTA.py),
            OFA loss T 1 gamma 0.1, SGD lr 0.1 momentum 0.9 without Nesterov, weight decay 1e-4 over
            the heads; 4 "epochs" of 5 steps (x0.1 from step 10, x0.01 from step 15).

The images are the first 70 x --batch training images, zero-padded 28 -> 32 and normalised
(mean 0.2860, std 0.3530) as disttrain's loader does; both sides get the same tensors. The
reference runs in float32 (what is compared against), in float64, and --float32-copies more times
in float32 from the start moved by 1 ulp at random: how far float32 rounding alone moves a 70-step
trajectory, measured as the spread of the reference's own runs. The recording is written to --out, then
`disttrain check-reference --replay` replays it with the project's network, optimizer and
schedule and compares every step's loss and the weights and BatchNorm buffers after each phase
(tolerance: see Sources/DistTrain/ReferenceReplay.swift).

The base learning rate is 0.01 by default, not the run file's 0.1: at 0.1 float32 rounding alone
decorrelates the trajectory within a few steps (the reference's own float32 and float64 runs differ
by 4e-4 in the loss after one step and by 0.2-0.4 after 15), so a later step's loss says nothing
about the implementation. The schedule's shape, momentum, Nesterov, weight decay and the phase
switch are the run's; an error in their order shows at any learning rate.

usage: multistep_parity.py --reference IMTA_CHECKOUT [--data /usr/share/datasets/fashion-mnist]
                           [--out /tmp/multistep.h5] [--batch 64] [--seed 0] [--float32-copies 3] [--disttrain PATH]
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

import h5py
import numpy as np

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument('--reference', required=True, help='a checkout of github.com/kalviny/IMTA')
parser.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
parser.add_argument('--out', default='/tmp/multistep-parity.h5')
parser.add_argument('--batch', type=int, default=64)
parser.add_argument('--seed', type=int, default=0)
parser.add_argument('--threads', type=int, default=2)
parser.add_argument('--lr', type=float, default=0.01,
                    help='base learning rate of both phases (the run file has 0.1; see below)')
parser.add_argument('--float32-copies', type=int, default=3,
                    help='further float32 runs of the reference from the start moved by 1 ulp at random (the tolerance)')
parser.add_argument('--disttrain', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '.build', 'release', 'disttrain'))

CONFIG = {'data': 'cifar10', 'nBlocks': 5, 'stepmode': 'lin_grow', 'step': 1, 'base': 1, 'nChannels': 16, 'growthRate': 6,
          'grFactor': [1, 2, 4], 'bnFactor': [1, 2, 4], 'num_classes': 10, 'prune': 'max', 'reduction': 0.5,
          'bottleneck': True, 'T': 1.0, 'gamma': 0.1, 'isc_detach': False, 'ofa_reduction': 'mean'}
PHASES = {
    'phase1': {'lr': 0.1, 'momentum': 0.9, 'nesterov': True, 'weightDecay': 1e-4, 'epochs': 5, 'stepsPerEpoch': 10,
               'milestones': [0.5, 0.75], 'factor': 0.1},
    'phase2': {'lr': 0.1, 'momentum': 0.9, 'nesterov': False, 'weightDecay': 1e-4, 'epochs': 4, 'stepsPerEpoch': 5,
               'milestones': [0.5, 0.75], 'factor': 0.1},
}


def read_idx(path):
    with gzip.open(path, 'rb') as file:
        data = file.read()
    dimensions = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(dimensions)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dimensions).reshape(shape)


def batches(options, steps):
    images = read_idx(os.path.join(options.data, 'train-images-idx3-ubyte.gz'))[:steps * options.batch]
    labels = read_idx(os.path.join(options.data, 'train-labels-idx1-ubyte.gz'))[:steps * options.batch]
    padded = np.zeros((len(images), 1, 32, 32), dtype=np.float32)
    padded[:, 0, 2:30, 2:30] = images
    normalised = ((padded / np.float32(255) - np.float32(0.2860)) / np.float32(0.3530)).astype(np.float32)
    return (normalised.reshape(steps, options.batch, 1, 32, 32), labels.astype(np.int64).reshape(steps, options.batch))


def reference_learning_rate(phase, step):
    """The reference's `adjust_learning_rate` (multistep, cifar) at the epoch of `step`."""
    settings = PHASES[phase]
    epoch = step // settings['stepsPerEpoch']
    lr = settings['lr']
    if epoch >= settings['epochs'] * 0.75:
        lr *= settings['factor'] ** 2
    elif epoch >= settings['epochs'] * 0.5:
        lr *= settings['factor']
    return lr


def main():
    options = parser.parse_args()
    for settings in PHASES.values():
        settings['lr'] = options.lr
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import reference_sweep as sweep
    torch, ge_module, imta_module = sweep.load_reference(options.reference)
    torch.set_num_threads(options.threads)
    nn, functional = torch.nn, torch.nn.functional
    steps1 = PHASES['phase1']['epochs'] * PHASES['phase1']['stepsPerEpoch']
    steps2 = PHASES['phase2']['epochs'] * PHASES['phase2']['stepsPerEpoch']
    images, labels = batches(options, steps1 + steps2)

    def build():
        model = sweep.build(torch, ge_module, imta_module, CONFIG)
        first = model.net.blocks[0][0].layers[0].net[0]
        replacement = nn.Conv2d(1, first.out_channels, 3, 1, 1, bias=False)
        replacement.weight.data.normal_(0, math.sqrt(2.0 / (9 * first.out_channels)))
        model.net.blocks[0][0].layers[0].net[0] = replacement
        return model

    torch.manual_seed(options.seed)
    with torch.no_grad():
        start = {key: value.float() if value.is_floating_point() else value.clone() for key, value in build().state_dict().items()}

    def train(dtype, begin=start):
        model = build().to(dtype)
        model.load_state_dict({key: value.to(dtype) if value.is_floating_point() else value for key, value in begin.items()})
        record = {'phase1': [], 'phase2': []}
        settings = PHASES['phase1']
        optimizer = torch.optim.SGD(model.net.parameters(), settings['lr'], momentum=settings['momentum'],
                                    weight_decay=settings['weightDecay'], nesterov=settings['nesterov'])
        model.net.train()
        for step in range(steps1):
            for group in optimizer.param_groups:
                group['lr'] = reference_learning_rate('phase1', step)
            x = torch.from_numpy(images[step]).to(dtype)
            y = torch.from_numpy(labels[step])
            logits, _ = model.net(x)
            loss = sum(functional.cross_entropy(exit_logits, y) for exit_logits in logits)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            record['phase1'].append(loss.item())
        after1 = {key: value.detach().double().numpy().copy() for key, value in model.net.state_dict().items()}

        for parameter in model.net.parameters():
            parameter.requires_grad = False
        settings = PHASES['phase2']
        heads = list(model.classifier.parameters()) + list(model.isc_modules.parameters())
        optimizer = torch.optim.SGD(heads, settings['lr'], momentum=settings['momentum'],
                                    weight_decay=settings['weightDecay'], nesterov=settings['nesterov'])
        model.train()
        divergence = nn.KLDivLoss()
        temperature, gamma = CONFIG['T'], CONFIG['gamma']
        for step in range(steps2):
            for group in optimizer.param_groups:
                group['lr'] = reference_learning_rate('phase2', step)
            x = torch.from_numpy(images[steps1 + step]).to(dtype)
            y = torch.from_numpy(labels[steps1 + step])
            outputs, soft_target = model(x)
            loss = functional.cross_entropy(outputs[-1], y)
            for output in outputs[:-1]:
                loss = loss + (1 - gamma) * functional.cross_entropy(output, y) + divergence(
                    functional.log_softmax(output / temperature, dim=1),
                    functional.softmax(soft_target.detach() / temperature, dim=1)) * gamma * temperature * temperature
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            record['phase2'].append(loss.item())
        after2 = {key: value.detach().double().numpy().copy() for key, value in model.state_dict().items()}
        return record, after1, after2

    print(f'reference: torch {torch.__version__}, {torch.get_num_threads()} threads, batch {options.batch}, '
          f'{steps1} phase-I + {steps2} phase-II steps, float32 and float64 ...', flush=True)
    single = train(torch.float32)
    double = train(torch.float64)
    generator = np.random.default_rng(options.seed)
    copies = [train(torch.float32, {key: torch.from_numpy(sweep.moved_by_one_ulp(value.numpy(), generator))
                                    if value.is_floating_point() else value for key, value in start.items()})
              for _ in range(options.float32_copies)]

    with h5py.File(options.out, 'w') as file:
        file.attrs['config'] = json.dumps(CONFIG)
        file.attrs['replay'] = json.dumps(PHASES)
        file.attrs['layout'] = 'NCHW tensors; parameter names are the reference PyTorch state_dict keys'
        for key, value in start.items():
            name = ('params/' + key[4:]) if key.startswith('net.') else ('phase2/params/' + key)
            file[name] = value.numpy()
        for phase, offset, count in [('phase1', 0, steps1), ('phase2', steps1, steps2)]:
            file[f'replay/{phase}/images'] = images[offset:offset + count]
            file[f'replay/{phase}/labels'] = labels[offset:offset + count]
            file[f'replay/{phase}/loss'] = np.array(single[0][phase], dtype=np.float64)
            file[f'replay/{phase}/loss_float64'] = np.array(double[0][phase], dtype=np.float64)
            file[f'replay/{phase}/loss_float32_copies'] = np.array([copy[0][phase] for copy in copies], dtype=np.float64).reshape(-1, count)
            file[f'replay/{phase}/lr'] = np.array([reference_learning_rate(phase, step) for step in range(count)])
        for phase, index in [('phase1', 1), ('phase2', 2)]:
            runs = [('', single), ('_float64', double)] + [(f'_float32_copy{number}', copy) for number, copy in enumerate(copies)]
            for suffix, run in runs:
                for key, value in run[index].items():
                    if value.dtype.kind == 'f':
                        file[f'replay/{phase}/params_after{suffix}/{key}'] = value.astype(np.float32)
    completed = subprocess.run([options.disttrain, 'check-reference', '--replay', options.out])
    sys.exit(completed.returncode)


if __name__ == '__main__':
    main()
