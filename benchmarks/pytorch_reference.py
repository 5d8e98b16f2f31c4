#!/usr/bin/env python3
"""Training throughput of the authors' PyTorch code (kalviny/IMTA), for comparison with
`disttrain bench` on the same machine.

The reference is imported, unmodified, from a checkout given with --reference; nothing of it is
in this repository. Random images, CPU, batch 64 by default:

  phase 1: MSDNet with Gradient Equilibrium (models/msdnet_ge.py), loss = sum of the exits'
           cross-entropies, SGD over every parameter (momentum 0.9, Nesterov, weight decay 1e-4);
  phase 2: IMTA_MSDNet (models/msdnet_imta.py), backbone frozen but in train mode as in
           main_IMTA.py, SGD over the new heads and ISC modules, loss = OFA distillation
           (T = 1, gamma = 0.1, KL divergence with PyTorch's default 'mean' reduction);
  eval:    IMTA_MSDNet in eval mode under torch.no_grad(), logits of every exit (what
           `disttrain eval` computes, and `bench`'s evalImagesPerSecond).

Networks (the same as the run files named):
  fm             cluster/fashion-mnist.json    1x32x32, 10 classes, 5 blocks, lin_grow step 1 base 1
  cifar100       cluster/cifar100.json         3x32x32, 100 classes, 7 blocks, lin_grow step 1 base 1 (Table 1)
  cifar100-anytime cluster/cifar100-anytime.json 3x32x32, 100 classes, 7 blocks, even step 2 base 4
  imagenet       cluster/imagenet.json         3x224x224, 1000 classes, 5 blocks, 4 scales, even step 4
                                               base 4, 32 channels, growth 16 (the paper's step-4 net)

usage: pytorch_reference.py --reference DIR {fm,cifar100,cifar100-anytime,imagenet} {1,2,eval}
                            [--steps 20] [--warmup 5]
                            [--batch 64] [--threads 2]
"""
import argparse
import contextlib
import io
import math
import statistics
import sys
import time

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument('--reference', required=True, help='a checkout of github.com/kalviny/IMTA')
parser.add_argument('network', choices=['fm', 'cifar100', 'cifar100-anytime', 'imagenet'])
parser.add_argument('phase', choices=['1', '2', 'eval'])
parser.add_argument('--warmup', type=int, default=5)
parser.add_argument('--steps', type=int, default=20)
parser.add_argument('--batch', type=int, default=64)
parser.add_argument('--threads', type=int, default=2)
options = parser.parse_args()

sys.path.insert(0, options.reference)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import models  # noqa: E402,F401  (the reference's package; registers the submodules below)

gradient_equilibrium = sys.modules['models.msdnet_ge']
imta = sys.modules['models.msdnet_imta']
torch.set_num_threads(options.threads)
torch.manual_seed(0)


class Arguments:
    """The reference builds its networks from an argparse namespace."""


arguments = Arguments()
input_channels, arguments.num_classes, image_size = {
    'fm': (1, 10, 32), 'cifar100': (3, 100, 32), 'cifar100-anytime': (3, 100, 32), 'imagenet': (3, 1000, 224)}[options.network]
arguments.data = {'fm': 'cifar10', 'imagenet': 'ImageNet'}.get(options.network, 'cifar100')
if options.network == 'imagenet':
    arguments.nBlocks, arguments.stepmode, arguments.step, arguments.base = 5, 'even', 4, 4
    arguments.nChannels, arguments.growthRate = 32, 16
    arguments.grFactor, arguments.bnFactor, arguments.nScales = [1, 2, 4, 4], [1, 2, 4, 4], 4
else:
    arguments.nBlocks, arguments.stepmode, arguments.step, arguments.base = (
        (7, 'even', 2, 4) if options.network == 'cifar100-anytime' else (5 if options.network == 'fm' else 7, 'lin_grow', 1, 1))
    arguments.nChannels, arguments.growthRate = 16, 6
    arguments.grFactor, arguments.bnFactor, arguments.nScales = [1, 2, 4], [1, 2, 4], 3
arguments.prune, arguments.reduction, arguments.bottleneck = 'max', 0.5, True
arguments.pretrained = None
arguments.T, arguments.gamma = 1.0, 0.1


def single_channel_stem(network):
    """The reference's first convolution always takes 3 channels; Fashion-MNIST has 1."""
    if input_channels != 3:
        first = network.blocks[0][0].layers[0].net[0]
        replacement = nn.Conv2d(input_channels, first.out_channels, 3, 1, 1, bias=False)
        replacement.weight.data.normal_(0, math.sqrt(2.0 / (9 * first.out_channels)))
        network.blocks[0][0].layers[0].net[0] = replacement
    return network


with contextlib.redirect_stdout(io.StringIO()):  # the reference prints its build log
    if options.phase == '1':
        model = single_channel_stem(gradient_equilibrium.msdnet_ge(arguments))
    else:
        model = imta.IMTA_MSDNet(arguments)
        single_channel_stem(model.net)

images = torch.randn(options.batch, input_channels, image_size, image_size)
labels = torch.randint(0, arguments.num_classes, (options.batch,))
model.train(options.phase != 'eval')
cross_entropy = nn.CrossEntropyLoss()

if options.phase == 'eval':
    def step():
        with torch.no_grad():
            logits = model(images)
        return sum(float(exit_logits[0, 0]) for exit_logits in logits)
elif options.phase == '1':
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)

    def loss_of_step():
        logits, _ = model(images)
        return sum(cross_entropy(exit_logits, labels) for exit_logits in logits)
else:
    for parameter in model.net.parameters():
        parameter.requires_grad = False
    optimizer = torch.optim.SGD(list(model.classifier.parameters()) + list(model.isc_modules.parameters()),
                                0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
    divergence = nn.KLDivLoss(reduction='mean')

    def loss_of_step():
        logits, teacher = model(images)
        target = torch.softmax(teacher.detach() / arguments.T, dim=1)
        loss = cross_entropy(logits[-1], labels)
        for exit_logits in logits[:-1]:
            student = torch.log_softmax(exit_logits / arguments.T, dim=1)
            loss = loss + (1 - arguments.gamma) * cross_entropy(exit_logits, labels) \
                + arguments.gamma * arguments.T ** 2 * divergence(student, target)
        return loss

if options.phase != 'eval':
    def step():
        loss = loss_of_step()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()


for _ in range(options.warmup):
    step()
seconds = []
for _ in range(options.steps):
    start = time.perf_counter()
    step()
    seconds.append(time.perf_counter() - start)
print(f'{options.network} phase {options.phase}: torch {torch.__version__}, {torch.get_num_threads()} threads, '
      f'oneDNN {torch.backends.mkldnn.is_available()}, batch {options.batch}, {options.steps} steps')
print(f'{options.batch * options.steps / sum(seconds):.1f} images/s '
      f'(median step {statistics.median(seconds) * 1e3:.1f} ms)')
